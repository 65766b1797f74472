package kvload

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// EtcdDBFile is etcd's database file in its data dir.
func EtcdDBFile(dataDir string) (string, error) {
	p := filepath.Join(dataDir, "member", "snap", "db")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("etcd db file: %w", err)
	}
	return p, nil
}

// KetchDBFile takes the largest regular file in the data dir, since ketch keeps one bbolt
// file there. An etcd-layout db is preferred when present so that an etcd-based stand-in is
// compared file for file (its preallocated 64 MiB WAL would otherwise be the largest).
func KetchDBFile(dataDir string) (string, error) {
	if p, err := EtcdDBFile(dataDir); err == nil {
		return p, nil
	}
	var best string
	var bestSize int64 = -1
	err := filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > bestSize {
			best, bestSize = path, info.Size()
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("scan %s: %w", dataDir, err)
	}
	if best == "" {
		return "", fmt.Errorf("no regular file in %s", dataDir)
	}
	return best, nil
}
