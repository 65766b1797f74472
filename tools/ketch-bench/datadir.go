package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

func makeDataRoot(parent string) (string, error) {
	// Check the filesystem before creating anything, so a refused --data-root leaves no trace.
	existing, err := filepath.Abs(parent)
	if err != nil {
		return "", fmt.Errorf("--data-root: %w", err)
	}
	for {
		if _, err := os.Stat(existing); err == nil || filepath.Dir(existing) == existing {
			break
		}
		existing = filepath.Dir(existing)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(existing, &st); err != nil {
		return "", fmt.Errorf("--data-root: statfs %s: %w", existing, err)
	}
	const tmpfsMagic, ramfsMagic = 0x01021994, 0x858458f6
	if st.Type == tmpfsMagic || st.Type == ramfsMagic {
		return "", fmt.Errorf("--data-root %s is in memory (tmpfs/ramfs), where fsync is free and the numbers meaningless; pick a directory on a real disk", parent)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("--data-root: %w", err)
	}
	dir, err := os.MkdirTemp(parent, "ketch-bench-")
	if err != nil {
		return "", fmt.Errorf("create data root: %w", err)
	}
	return dir, nil
}

func etcdDBFile(dataDir string) (string, error) {
	p := filepath.Join(dataDir, "member", "snap", "db")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("etcd db file: %w", err)
	}
	return p, nil
}

// ketchDBFile takes the largest regular file in the data dir, since ketch keeps one bbolt
// file there. An etcd-layout db is preferred when present so that an etcd-based stand-in is
// compared file for file (its preallocated 64 MiB WAL would otherwise be the largest).
func ketchDBFile(dataDir string) (string, error) {
	if p, err := etcdDBFile(dataDir); err == nil {
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
