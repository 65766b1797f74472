package pki

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	dirMode        os.FileMode = 0o700
	keyMode        os.FileMode = 0o600
	certMode       os.FileMode = 0o644
	kubeconfigMode os.FileMode = 0o600
)

// ensureDir creates dir and tightens an existing one: it holds private keys.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("creating directory %s: %w", dir, err)
	}
	if err := os.Chmod(dir, dirMode); err != nil {
		return fmt.Errorf("setting mode of directory %s: %w", dir, err)
	}
	return nil
}

// writeFileAtomic replaces path so that readers see the old or the new content, never a mix,
// and a crash cannot leave a truncated key or certificate. keyutil.WriteKey and
// cert.WriteCert write in place, which is why they are not used here.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// Chmod, unlike the mode given at creation, is not narrowed by the umask.
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// writeIfChanged leaves a file that already has the wanted content alone, so restarts do not
// touch mtimes or wake file watchers; only a wrong mode is corrected in place.
func writeIfChanged(path string, data []byte, mode os.FileMode) error {
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, data):
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("checking %s: %w", path, err)
		}
		if fi.Mode().Perm() != mode {
			if err := os.Chmod(path, mode); err != nil {
				return fmt.Errorf("setting mode of %s: %w", path, err)
			}
		}
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return writeFileAtomic(path, data, mode)
}

// readOptional reads a file that may legitimately not exist yet; exists tells a missing file
// from an empty one, which is damage.
func readOptional(path string) (data []byte, exists bool, err error) {
	data, err = os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", path, err)
	}
	return data, true, nil
}
