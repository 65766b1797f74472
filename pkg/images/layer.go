package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// File is one entry of a layer.
type File struct {
	// Path inside the image, e.g. "/pause" or "etc/ketch/x.conf"; a leading "/" is optional.
	Path string
	// Mode holds the permission bits (0755, 04755, ...) and, for non-regular entries,
	// fs.ModeDir or fs.ModeSymlink. It is taken as given, never from the host, so that the
	// image does not depend on the umask or the checkout.
	Mode fs.FileMode
	// Content of a regular file. When nil, the content is read from Source.
	Content []byte
	// Source is a host file to read the content from when Content is nil.
	Source string
	// Linkname is the target of a symlink.
	Linkname string
}

// Layer is a set of files that becomes one image layer. Parent directories that are not
// listed are added with mode 0755.
type Layer struct {
	Files []File
}

// epoch is every entry's modification time: a fixed time keeps the digest independent of
// when, and from which checkout, the image was built.
var epoch = time.Unix(0, 0).UTC()

// builtLayer is a layer's compressed blob plus what the config and a docker-archive need about
// its uncompressed form. Only the compressed bytes are kept in memory.
type builtLayer struct {
	blob      []byte        // compressed tar
	mediaType string        // ocispec.MediaTypeImageLayerGzip or ...Zstd: how blob is compressed
	digest    digest.Digest // of blob
	diffID    digest.Digest // of the uncompressed tar
	tarSize   int64         // of the uncompressed tar
}

// buildLayer writes the layer's tar through gzip, hashing both forms on the way.
func buildLayer(l Layer) (*builtLayer, error) {
	entries, err := layerEntries(l)
	if err != nil {
		return nil, err
	}

	var blob bytes.Buffer
	blobHash := sha256.New()
	// The gzip header carries no name and a zero mtime, so equal tars give equal blobs (for the
	// compressor version go.mod pins). Fastest level: a node builds these images on its first
	// start, where every second of CPU counts (the addon image, 80 MB of program, once took
	// seconds at the stdlib's default level; its layer now comes ready-made, EnsureAddonsImage).
	zw, err := gzip.NewWriterLevel(io.MultiWriter(&blob, blobHash), gzip.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("layer gzip: %w", err)
	}
	// Unlike the stdlib, this writer stores a zero time.Time as a date in 2042; the epoch is
	// stored as 0, "no time".
	zw.ModTime = time.Unix(0, 0)
	var tarBytes byteCounter
	diffHash := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, diffHash, &tarBytes))

	for _, e := range entries {
		if err := writeEntry(tw, e); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("finish layer tar: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("finish layer gzip: %w", err)
	}
	return &builtLayer{
		blob:      blob.Bytes(),
		mediaType: ocispec.MediaTypeImageLayerGzip,
		digest:    digestOf(blobHash),
		diffID:    digestOf(diffHash),
		tarSize:   tarBytes.n,
	}, nil
}

// layerEntries cleans the paths, adds missing parent directories, rejects duplicates and
// sorts the result, so that the order of l.Files does not change the digest.
func layerEntries(l Layer) ([]File, error) {
	byPath := make(map[string]File)
	for _, f := range l.Files {
		p := strings.TrimPrefix(path.Clean("/"+f.Path), "/")
		if p == "" {
			return nil, fmt.Errorf("layer file %q: not a path below /", f.Path)
		}
		if _, dup := byPath[p]; dup {
			return nil, fmt.Errorf("layer file %q: listed twice", f.Path)
		}
		f.Path = p
		byPath[p] = f
	}
	for p := range byPath {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if f, ok := byPath[dir]; ok {
				if !f.Mode.IsDir() {
					return nil, fmt.Errorf("layer file %q: parent %q is not a directory", p, dir)
				}
				continue
			}
			byPath[dir] = File{Path: dir, Mode: fs.ModeDir | 0o755}
		}
	}
	entries := make([]File, 0, len(byPath))
	for _, f := range byPath {
		entries = append(entries, f)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return entries, nil
}

func writeEntry(tw *tar.Writer, f File) error {
	hdr := &tar.Header{
		Name:    f.Path,
		Mode:    int64(f.Mode.Perm()),
		ModTime: epoch,
		// Uid, Gid 0 and empty user/group names: owned by root inside the image whatever
		// user built it.
	}
	if f.Mode&fs.ModeSetuid != 0 {
		hdr.Mode |= 0o4000
	}
	if f.Mode&fs.ModeSetgid != 0 {
		hdr.Mode |= 0o2000
	}
	if f.Mode&fs.ModeSticky != 0 {
		hdr.Mode |= 0o1000
	}
	var (
		content []byte
		source  *os.File
	)
	switch {
	case f.Mode.IsDir():
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case f.Mode&fs.ModeSymlink != 0:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = f.Linkname
	case f.Mode.IsRegular():
		hdr.Typeflag = tar.TypeReg
		content = f.Content
		hdr.Size = int64(len(content))
		if content == nil && f.Source != "" {
			// Streamed rather than read whole: a source may be the ketch binary itself.
			var err error
			if source, err = os.Open(f.Source); err != nil {
				return fmt.Errorf("layer file %q: %w", f.Path, err)
			}
			defer source.Close()
			st, err := source.Stat()
			if err != nil {
				return fmt.Errorf("layer file %q: %w", f.Path, err)
			}
			hdr.Size = st.Size()
		}
	default:
		return fmt.Errorf("layer file %q: unsupported mode %v", f.Path, f.Mode)
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("layer file %q: %w", f.Path, err)
	}
	if source != nil {
		// CopyN fails on a file that shrank while we read it rather than writing a short entry.
		if _, err := io.CopyN(tw, source, hdr.Size); err != nil {
			return fmt.Errorf("layer file %q from %s: %w", f.Path, f.Source, err)
		}
		return nil
	}
	if _, err := tw.Write(content); err != nil {
		return fmt.Errorf("layer file %q: %w", f.Path, err)
	}
	return nil
}

// byteCounter counts what is written to it and keeps nothing.
type byteCounter struct{ n int64 }

func (c *byteCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

func digestOf(h hash.Hash) digest.Digest {
	return digest.NewDigest(digest.SHA256, h)
}
