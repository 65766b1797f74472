package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/renameio/v2"
	"k8s.io/klog/v2"
)

// WriteBundled writes the bundled addon manifests into dir (created 0700 if missing). files maps
// a base file name ("coredns.yaml") to its content. A file is written atomically, mode 0600,
// unless "<name>.skip" exists in dir; identical content is not rewritten, so its mtime stays.
// For every addon name in disabled ("coredns" for "coredns.yaml") the file is removed instead,
// so that the controller deletes what it created, unless it is marked .skip: then it belongs to
// the administrator. A disabled name that is not a bundled addon is an error naming the valid
// ones.
func WriteBundled(dir string, files map[string][]byte, disabled []string) error {
	names := make([]string, 0, len(files))
	for name := range files {
		if name != filepath.Base(name) || !isManifest(name) || filepath.Ext(name) != ".yaml" {
			return fmt.Errorf("bundled manifest %q is not a visible file name ending in .yaml", name)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	off := make(map[string]bool, len(disabled))
	for _, addon := range disabled {
		if _, ok := files[addon+".yaml"]; !ok {
			return fmt.Errorf("%q is not a bundled addon; the addons are %s", addon, strings.Join(addonNames(names), ", "))
		}
		off[addon+".yaml"] = true
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the manifests directory: %w", err)
	}
	for _, name := range names {
		path := filepath.Join(dir, name)
		skip, err := skipMarked(path)
		if err != nil {
			return err
		}
		switch {
		case skip:
			klog.V(2).InfoS("Leaving a bundled manifest marked .skip", "file", name)
		case off[name]:
			if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("removing disabled addon %s: %w", name, err)
			}
		default:
			if err := writeIfChanged(dir, name, files[name]); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeIfChanged(dir, name string, content []byte) error {
	path := filepath.Join(dir, name)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, content) {
		return nil
	}
	// The temporary file is hidden and in dir, so the controller ignores it and the rename is
	// atomic.
	f, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir), renameio.WithPermissions(0o600))
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	defer f.Cleanup()
	if _, err := f.Write(content); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

func addonNames(files []string) []string {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(f, ".yaml")
	}
	return names
}
