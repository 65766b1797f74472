package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const skipSuffix = ".skip"

// isManifest is whether a directory entry's name is a manifest file's.
func isManifest(name string) bool {
	ext := filepath.Ext(name)
	return !strings.HasPrefix(name, ".") && (ext == ".yaml" || ext == ".yml")
}

// relevant is whether a change to the named entry can change what is applied; it keeps the
// temporary files of atomic writes, which are hidden, from causing passes.
func relevant(name string) bool {
	return isManifest(name) || !strings.HasPrefix(name, ".") && strings.HasSuffix(name, skipSuffix)
}

// listing is what the manifests directory holds.
type listing struct {
	// apply is the manifests to apply, in name order.
	apply []string
	// keep is the manifests whose objects stay: those present, and those marked .skip even if
	// absent.
	keep map[string]bool
}

func scanDir(dir string) (listing, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return listing{}, fmt.Errorf("reading the manifests directory: %w", err)
	}
	l := listing{keep: map[string]bool{}}
	skipped := map[string]bool{}
	var present []string
	for _, e := range entries {
		name := e.Name()
		if base, ok := strings.CutSuffix(name, skipSuffix); ok && !strings.HasPrefix(name, ".") {
			skipped[base] = true
			l.keep[base] = true
			continue
		}
		if isManifest(name) && !e.IsDir() {
			present = append(present, name)
		}
	}
	for _, name := range present {
		l.keep[name] = true
		if !skipped[name] {
			l.apply = append(l.apply, name)
		}
	}
	return l, nil
}

// skipMarked is whether "<path>.skip" exists.
func skipMarked(path string) (bool, error) {
	_, err := os.Lstat(path + skipSuffix)
	if err == nil {
		return true, nil
	}
	if os.IsNotExist(err) {
		return false, nil
	}
	return false, fmt.Errorf("checking for %s: %w", filepath.Base(path)+skipSuffix, err)
}
