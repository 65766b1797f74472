package mvcc

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	"k8s.io/klog/v2"
)

// DBSize returns the file's logical size and the part of it holding live pages (the rest are
// free pages that later writes reuse, or that Defragment gives back).
func (s *Store) DBSize() (size, inUse int64) {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	s.db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	st := s.db.Stats()
	inUse = size - int64(st.FreePageN+st.PendingPageN)*int64(s.db.Info().PageSize)
	return size, inUse
}

// Snapshot writes a consistent copy of the file to w while writes go on, and returns its size.
func (s *Store) Snapshot(w io.Writer, size func(int64)) error {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	tx, err := s.db.Begin(false)
	if err != nil {
		return fmt.Errorf("starting a snapshot transaction: %w", err)
	}
	defer tx.Rollback()
	if size != nil {
		size(tx.Size())
	}
	if _, err := tx.WriteTo(w); err != nil {
		return fmt.Errorf("writing snapshot: %w", err)
	}
	return nil
}

// Defragment rewrites the file without its free pages. Reads and writes wait while it runs.
func (s *Store) Defragment() error {
	start := time.Now()
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	path := s.opts.Path
	tmp := path + ".defrag"
	os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{NoSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("defragment: creating %s: %w", tmp, err)
	}
	abandon := func(err error) error {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("defragment %s: %w", path, err)
	}
	if err := bolt.Compact(dst, s.db, 64<<20); err != nil {
		return abandon(err)
	}
	if err := dst.Sync(); err != nil {
		return abandon(err)
	}
	if err := dst.Close(); err != nil {
		return abandon(err)
	}
	before, _ := os.Stat(path)
	if err := s.db.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("defragment: closing %s: %w", path, err)
	}
	renameErr := os.Rename(tmp, path)
	if renameErr == nil {
		renameErr = syncDir(filepath.Dir(path))
	}
	// Reopen whichever file is now at path: the compacted copy, or the original if the rename
	// failed.
	db, err := openBolt(path, s.opts.LockTimeout, s.opts.InitialMmapSize, false)
	if err != nil {
		failed := fmt.Errorf("datastore file %s could not be reopened after defragmenting: %w", path, err)
		s.writeErr.Store(&failed)
		return failed
	}
	s.db = db
	if renameErr != nil {
		os.Remove(tmp)
		return fmt.Errorf("defragment: replacing %s: %w", path, renameErr)
	}
	after, _ := os.Stat(path)
	if before != nil && after != nil {
		klog.InfoS("Defragmented datastore", "path", path, "before", before.Size(), "after", after.Size(), "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
