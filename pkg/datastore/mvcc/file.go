package mvcc

// The bbolt file: its layout (see the package documentation), opening it, reading it back into
// memory with every page and record verified, and checking it.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"k8s.io/klog/v2"
)

var (
	bucketRevs   = []byte("revs")
	bucketLeases = []byte("leases")
	bucketMeta   = []byte("meta")

	metaFormat      = []byte("format")
	metaRev         = []byte("rev")
	metaCompactRev  = []byte("compact_rev")
	metaCompactDone = []byte("compact_done")
	metaClusterID   = []byte("cluster_id")
	metaMemberID    = []byte("member_id")
	// metaCleanClose holds the ID of the transaction Close wrote last, with bbolt's freelist.
	metaCleanClose = []byte("clean_close")
	// metaRecords counts the records in the revs bucket as of the last commit. bbolt pages carry
	// no checksum: a damaged branch page can drop whole subtrees of records while every page
	// left in the tree still passes bbolt's checks (the dropped pages just look free). Records
	// carry their own checksum; this count catches the records that are no longer there at all.
	metaRecords = []byte("records")
)

// formatVersion names the on-disk layout; a file with another value is refused.
const formatVersion = "ketch-datastore-2"

// load opens the file and rebuilds all in-memory state from it.
//
// An existing file is first read completely through a read-only handle, where damage (a bad
// page, a truncated file) surfaces as an error or a recoverable panic in this goroutine. Only
// then is it opened for writing. Like etcd, the store does not write bbolt's freelist on every
// commit (with many free pages that costs more than the data); Close writes it. After an
// unclean shutdown, opening for writing rebuilds the freelist by walking every page in a
// goroutine of bbolt's, which panics on inconsistencies a read cannot see (a page claimed
// twice); after a clean one, a damaged freelist is trusted and the next commit panics or
// overwrites live pages. So every existing file is first checked out of process with
// CheckFile: about 170 ms for an 80 MB file, far less for a small cluster's.
func (s *Store) load() error {
	path := s.opts.Path
	info, err := os.Stat(path)
	exists := err == nil
	if exists && info.Size() == 0 {
		return fmt.Errorf("%w: %s is empty (truncated?); move it away to start with an empty datastore, or restore a snapshot", ErrCorrupt, path)
	}
	var st loadedState
	if exists {
		ro, err := openBolt(path, s.opts.LockTimeout, 0, true)
		if err != nil {
			return err
		}
		st, err = readState(ro)
		ro.Close()
		if err != nil {
			return fmt.Errorf("%w: %s: %v; restore a snapshot or move the file away to start empty", ErrCorrupt, path, err)
		}
		if !st.fresh && s.opts.CheckFile != nil {
			if st.cleanClose {
				klog.V(2).InfoS("Checking the datastore file", "path", path)
			} else {
				klog.InfoS("Datastore was not shut down cleanly; checking its file", "path", path)
			}
			if err := s.opts.CheckFile(path); err != nil {
				return fmt.Errorf("%w: %s: %v; restore a snapshot or move the file away to start empty", ErrCorrupt, path, err)
			}
		}
	}
	db, err := openBolt(path, s.opts.LockTimeout, s.opts.InitialMmapSize, false)
	if err != nil {
		return err
	}
	if !exists || st.fresh {
		if err := db.Update(initFile); err != nil {
			db.Close()
			return fmt.Errorf("initialising %s: %w", path, err)
		}
		if st, err = readState(db); err != nil {
			db.Close()
			return fmt.Errorf("reading the new file %s: %w", path, err)
		}
	}
	s.db = db
	s.idx = st.idx
	s.records.Store(st.records)
	s.rev.Store(st.rev)
	s.compactRev.Store(st.compactRev)
	s.clusterID, s.memberID = st.clusterID, st.memberID
	s.lessor = newLessor(st.leases)
	if s.events == nil {
		s.events = newEventLog(s.opts.EventCacheBytes)
	} else {
		s.events.reset()
	}
	klog.V(2).InfoS("Datastore loaded", "path", path, "revision", st.rev, "compacted", st.compactRev, "keys", st.idx.len(), "leases", len(st.leases))
	return nil
}

// openBolt opens the file, turning bbolt's failure modes into errors that say what to do.
// Faults on the mapped file (a truncated file) become panics with SetPanicOnFault, and bbolt
// panics on malformed pages; both are reported as corruption instead of crashing.
func openBolt(path string, lockTimeout time.Duration, mmapSize int, readOnly bool) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: %s: reading it failed (%v): it is truncated or damaged; restore a snapshot or move the file away to start empty", ErrCorrupt, path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         lockTimeout,
		ReadOnly:        readOnly,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: mmapSize,
	})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s (waited %v for its lock); stop the other ketch process or use another data dir", ErrLocked, path, lockTimeout)
	case errors.As(err, new(*fs.PathError)):
		// The file could not be opened at all (permissions, a missing directory): not damage.
		return nil, fmt.Errorf("opening %s: %w", path, err)
	case err != nil:
		// Everything else bbolt reports at open is about the file's content.
		return nil, fmt.Errorf("%w: %s: %v; restore a snapshot or move the file away to start empty", ErrCorrupt, path, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	var hwm int64
	if err := db.View(func(tx *bolt.Tx) error { hwm = tx.Size(); return nil }); err != nil {
		db.Close()
		return nil, err
	}
	if hwm > info.Size() {
		db.Close()
		return nil, fmt.Errorf("%w: %s is %d bytes but its pages reach %d bytes (truncated); restore a snapshot or move the file away to start empty", ErrCorrupt, path, info.Size(), hwm)
	}
	return db, nil
}

type loadedState struct {
	// fresh says the file has no buckets yet: it was just created.
	fresh bool
	// cleanClose says Close wrote the last transaction, with bbolt's freelist.
	cleanClose          bool
	idx                 *index
	records             int64
	rev, compactRev     int64
	clusterID, memberID uint64
	leases              map[int64]*lease
}

// readState reads the whole file into memory. Reading every record also proves every page of
// the log (leaves and the branches above them) readable.
func readState(db *bolt.DB) (st loadedState, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("reading it failed (%v): it is truncated or damaged", r)
		}
	}()
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				return fmt.Errorf("it has a bucket %q but no %q bucket: not a ketch datastore file", name, bucketMeta)
			})
		}
		if f := string(meta.Get(metaFormat)); f != formatVersion {
			return fmt.Errorf("unknown format %q (want %q): not a ketch datastore file, or from a newer ketch", f, formatVersion)
		}
		if tx.Bucket(bucketRevs) == nil || tx.Bucket(bucketLeases) == nil {
			return errors.New("a bucket is missing")
		}
		for _, b := range []cursorer{tx, meta} {
			if err := scanVerified(b, func(_, _ []byte) error { return nil }); err != nil {
				return err
			}
		}
		st.cleanClose = getInt(meta, metaCleanClose) == int64(tx.ID())
		st.rev = getInt(meta, metaRev)
		st.compactRev = getInt(meta, metaCompactRev)
		st.clusterID = uint64(getInt(meta, metaClusterID))
		st.memberID = uint64(getInt(meta, metaMemberID))
		idx, records, err := rebuildIndex(tx.Bucket(bucketRevs), st.rev)
		if err != nil {
			return err
		}
		// Files from before the count was kept have none; their first commit writes it.
		if v := meta.Get(metaRecords); v != nil {
			if want := getInt(meta, metaRecords); len(v) != 8 || want != records {
				return fmt.Errorf("it holds %d records but its last commit left %d: pages of the log were lost", records, want)
			}
		}
		st.idx, st.records = idx, records
		st.leases, err = loadLeases(tx.Bucket(bucketLeases), idx)
		return err
	})
	st.fresh = err == nil && st.idx == nil
	return st, err
}

// initFile creates the buckets and identity of a new file.
func initFile(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketRevs, bucketLeases} {
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("creating bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	if err := meta.Put(metaFormat, []byte(formatVersion)); err != nil {
		return err
	}
	// etcd starts an empty store at revision 1.
	for name, v := range map[string]int64{string(metaRev): 1, string(metaRecords): 0, string(metaClusterID): randomID(), string(metaMemberID): randomID()} {
		if err := putInt(meta, []byte(name), v); err != nil {
			return err
		}
	}
	return nil
}

// cursorer is a bucket, or a transaction's root bucket.
type cursorer interface{ Cursor() *bolt.Cursor }

// scanVerified calls fn for every key of b in order, checking on the way what bbolt's own page
// walk would panic on: keys strictly increasing, and every key found again by a lookup, which
// exercises the separator keys of every branch page above it.
func scanVerified(b cursorer, fn func(k, v []byte) error) error {
	c, lookup := b.Cursor(), b.Cursor()
	var prev []byte
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return fmt.Errorf("key %x follows key %x: pages out of order", k, prev)
		}
		if found, _ := lookup.Seek(k); !bytes.Equal(found, k) {
			return fmt.Errorf("looking up key %x finds %x: branch pages damaged", k, found)
		}
		if err := fn(k, v); err != nil {
			return err
		}
		prev = k
	}
	return nil
}

func rebuildIndex(revs *bolt.Bucket, rev int64) (idx *index, records int64, err error) {
	idx = newIndex()
	var last *keyIndex
	err = scanVerified(revs, func(k, v []byte) error {
		records++
		r, err := parseRevKey(k)
		if err != nil {
			return err
		}
		if r.main > rev {
			return fmt.Errorf("record at revision %d is beyond the store's revision %d", r.main, rev)
		}
		rec, err := decodeRecord(v)
		if err != nil {
			return fmt.Errorf("record at revision %d: %w", r.main, err)
		}
		ki := last
		if ki == nil || string(ki.key) != string(rec.key) {
			if ki = idx.get(rec.key); ki == nil {
				ki = &keyIndex{key: append([]byte(nil), rec.key...)}
				idx.insert(ki)
			}
		}
		last = ki
		ki.revs = append(ki.revs, indexRev{revision: r, tombstone: rec.tombstone})
		if rec.tombstone {
			ki.state = keyState{}
		} else {
			ki.state = keyState{modRev: r.main, createRev: rec.createRev, version: rec.version, lease: rec.lease}
		}
		return nil
	})
	return idx, records, err
}

func getInt(b *bolt.Bucket, name []byte) int64 {
	v := b.Get(name)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func putInt(b *bolt.Bucket, name []byte, v int64) error {
	return b.Put(name, binary.BigEndian.AppendUint64(nil, uint64(v)))
}

// CheckFile runs bbolt's complete consistency check of the datastore file at path, read-only.
// A damaged file can make bbolt panic in a goroutine of its own, which no caller can recover:
// run it in a process of its own (`ketch datastore check`).
func CheckFile(path string) error {
	db, err := openBolt(path, 2*time.Second, 0, true)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := readState(db); err != nil {
		return err
	}
	var errs []error
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			if len(errs) < 10 {
				errs = append(errs, err)
			}
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}
