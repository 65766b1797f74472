package images

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	digest "github.com/opencontainers/go-digest"
)

// StateFileName is where ImportDir remembers, in the directory it imports, which files it has
// imported. It starts with a dot so that no tarball pattern matches it.
const StateFileName = ".ketch-import-state.json"

// archiveSuffixes are the files ImportDir imports; Import detects the compression itself.
var archiveSuffixes = []string{".tar", ".tar.gz", ".tgz", ".tar.zst", ".tzst"}

// WithStateFile keeps ImportDir's state in path instead of the imported directory, for a
// directory ketch may not write to.
func WithStateFile(path string) ImportOption {
	return func(o *importOptions) { o.stateFile = path }
}

// FileResult is what ImportDir did with one file.
type FileResult struct {
	Path string
	// Images are the names the file provides: imported now, or, when Skipped, when it was.
	Images []string
	// Skipped is set for a file that is unchanged since it was imported and whose images
	// are all still in containerd, unpacked: nothing was imported.
	Skipped bool
	Err     error
}

// dirState is the state file: per file name, what it was when its images were imported.
type dirState struct {
	Files map[string]fileState `json:"files"`
}

type fileState struct {
	Size    int64         `json:"size"`
	ModTime int64         `json:"mtimeNanos"`
	Digest  digest.Digest `json:"digest"`
	Images  []imageState  `json:"images"`
}

type imageState struct {
	Name   string        `json:"name"`
	Target digest.Digest `json:"target"`
}

// ImportDir imports every *.tar, *.tar.gz, *.tgz, *.tar.zst and *.tzst file in dir (the
// agent's images/ directory, at start) with Import, in name order. A file whose size and mtime
// (or, failing those, sha256) match what was recorded when it was last imported, and whose
// images are all still in containerd and unpacked, is skipped without reading it, so restarts
// are fast. A file that fails does not stop the others: the error names it, it is not recorded,
// and the next call tries it again. A missing dir holds nothing to import.
func ImportDir(ctx context.Context, client *containerd.Client, dir string, opts ...ImportOption) ([]FileResult, error) {
	o := newImportOptions(opts)
	stateFile := o.stateFile
	if stateFile == "" {
		stateFile = filepath.Join(dir, StateFileName)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read image dir: %w", err)
	}

	old := loadState(stateFile)
	next := dirState{Files: make(map[string]fileState)}
	var results []FileResult
	var errs []error
	for _, e := range entries {
		if !isArchive(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		res, rec, err := importFile(ctx, client, path, old.Files[e.Name()], o)
		if err != nil {
			res.Err = fmt.Errorf("import %s: %w", path, err)
			errs = append(errs, res.Err)
		} else if rec != nil {
			next.Files[e.Name()] = *rec
		}
		if res.Path != "" {
			results = append(results, res)
		}
	}
	if err := saveState(stateFile, next); err != nil {
		errs = append(errs, err)
	}
	return results, errors.Join(errs...)
}

func isArchive(name string) bool {
	lower := strings.ToLower(name)
	for _, s := range archiveSuffixes {
		if strings.HasSuffix(lower, s) {
			return true
		}
	}
	return false
}

// importFile imports one file unless prev shows it unchanged. It returns a zero result for a
// path that is not a regular file (a directory named x.tar), and the record to keep.
func importFile(ctx context.Context, client *containerd.Client, path string, prev fileState, o importOptions) (FileResult, *fileState, error) {
	res := FileResult{Path: path}
	st, err := os.Stat(path) // follows symlinks: a link to a tarball elsewhere is imported
	if err != nil {
		return res, nil, err
	}
	if !st.Mode().IsRegular() {
		return FileResult{}, nil, nil
	}
	rec := fileState{Size: st.Size(), ModTime: st.ModTime().UnixNano()}

	if prev.Digest != "" && prev.Size == rec.Size {
		same := prev.ModTime == rec.ModTime
		if !same {
			// Touched or copied over with the same bytes: hashing is cheaper than importing.
			d, err := fileDigest(path)
			if err != nil {
				return res, nil, err
			}
			same = d == prev.Digest
		}
		if same && stillImported(ctx, client, prev.Images) {
			rec.Digest, rec.Images = prev.Digest, prev.Images
			res.Skipped = true
			for _, img := range prev.Images {
				res.Images = append(res.Images, img.Name)
			}
			return res, &rec, nil
		}
	}

	f, err := os.Open(path)
	if err != nil {
		return res, nil, err
	}
	defer f.Close()
	// The digest comes from the same read as the import, so a file is read once.
	h := sha256.New()
	tee := io.TeeReader(f, h)
	imgs, err := importImages(ctx, client, tee, o)
	res.Images = imageNames(imgs)
	for _, img := range imgs {
		rec.Images = append(rec.Images, imageState{Name: img.Name, Target: img.Target.Digest})
	}
	if err != nil {
		return res, nil, err
	}
	// The importer stops at the tar's end; the digest must cover the whole file.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return res, nil, err
	}
	rec.Digest = digest.NewDigest(digest.SHA256, h)
	return res, &rec, nil
}

// stillImported reports whether every recorded image is still in containerd with the same
// target and unpacked: containerd's state may have been reset, or an image removed, since.
func stillImported(ctx context.Context, client *containerd.Client, imgs []imageState) bool {
	if len(imgs) == 0 {
		return false
	}
	ctx = namespaces.WithNamespace(ctx, Namespace)
	for _, rec := range imgs {
		img, err := client.ImageService().Get(ctx, rec.Name)
		if err != nil || img.Target.Digest != rec.Target {
			return false
		}
		if ok, err := containerd.NewImage(client, img).IsUnpacked(ctx, DefaultSnapshotter); err != nil || !ok {
			return false
		}
	}
	return true
}

func fileDigest(path string) (digest.Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return digest.SHA256.FromReader(f)
}

// loadState reads the state file. A missing or unreadable one only costs a re-import, so it
// counts as empty.
func loadState(path string) dirState {
	var s dirState
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &s)
	}
	if s.Files == nil {
		s.Files = make(map[string]fileState)
	}
	return s
}

// saveState replaces the state file atomically, so a crash leaves the old or the new state.
func saveState(path string, s dirState) error {
	for _, f := range s.Files {
		sort.Slice(f.Images, func(i, j int) bool { return f.Images[i].Name < f.Images[j].Name })
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode import state: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write import state %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write import state %s: %w", path, err)
	}
	return nil
}
