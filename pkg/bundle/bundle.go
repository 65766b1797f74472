// Package bundle carries the programs that cannot be linked into the static ketch binary (runc,
// which needs cgo and libseccomp; the CNI plugins and crictl, whose mains cannot be imported;
// containerd's runc shim, which runs once per pod and must stay small) and unpacks them at start. (The pause
// program is not one of them: it runs only inside the pause image, which pkg/images builds.)
//
// build/bundle.mk builds them at the versions pinned in go.mod into bin/linux_<GOARCH>/ as one
// zstd-compressed tar (ArchiveFile) plus a SHA256SUMS file of their contents; this package
// embeds the directory of the architecture it is compiled for (embed_<GOARCH>.go), so that the
// bundles of several architectures can be built side by side for a release. One solid archive
// is half the size of compressing each program alone: they are all Go programs and share most
// of their runtime and standard library. A plain `go build` embeds only the directory's .keep:
// such a binary compiles and runs, but Unpack fails.
package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/ketch-k8s/ketch/pkg/embedpages"
)

// SumsFile names the checksum list in the bundle directory: "<sha256 hex>  <name>" per line (sha256sum's
// format), one line per program in ArchiveFile.
const SumsFile = "SHA256SUMS"

// ArchiveFile names the programs' archive in the bundle directory: a tar of regular files named as in SumsFile,
// compressed with zstd.
const ArchiveFile = "programs.tar.zst"

// ErrNotBuilt is returned by Unpack when the binary was built without the bundle.
var ErrNotBuilt = errors.New("built without the runtime bundle (runc, CNI plugins, crictl); build with make")

// Bundle is a set of compressed programs and their checksums.
type Bundle struct {
	fsys fs.FS // holds SumsFile and ArchiveFile
	sums []entry
	hash string // sha256 of SHA256SUMS: names the unpack directory
}

type entry struct {
	name string
	sum  string // hex sha256 of the uncompressed file
}

// Embedded returns the bundle carried in this binary, or ErrNotBuilt.
func Embedded() (*Bundle, error) {
	sub, err := fs.Sub(embedded, embeddedDir)
	if err != nil {
		return nil, fmt.Errorf("runtime bundle: %w", err)
	}
	return Open(sub)
}

// Open reads a bundle from fsys (SumsFile and ArchiveFile). Tests and tools use it on a
// bundle directory; the agent uses Embedded.
func Open(fsys fs.FS) (*Bundle, error) {
	raw, err := fs.ReadFile(fsys, SumsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotBuilt
	}
	if err != nil {
		return nil, fmt.Errorf("runtime bundle: reading %s: %w", SumsFile, err)
	}
	sums, err := parseSums(raw)
	if err != nil {
		return nil, fmt.Errorf("runtime bundle: %s: %w", SumsFile, err)
	}
	h := sha256.Sum256(raw)
	return &Bundle{fsys: fsys, sums: sums, hash: hex.EncodeToString(h[:])}, nil
}

// ReadSum reads fsys's SumsFile and returns name's checksum: for a directory the Makefile makes
// with the same checksum list but no archive of programs (the addon image's layer, pkg/images).
// A missing SumsFile is an error wrapping fs.ErrNotExist.
func ReadSum(fsys fs.FS, name string) (string, error) {
	raw, err := fs.ReadFile(fsys, SumsFile)
	if err != nil {
		return "", err
	}
	sums, err := parseSums(raw)
	if err != nil {
		return "", fmt.Errorf("%s: %w", SumsFile, err)
	}
	for _, e := range sums {
		if e.name == name {
			return e.sum, nil
		}
	}
	return "", fmt.Errorf("%s does not list %s", SumsFile, name)
}

func parseSums(raw []byte) ([]entry, error) {
	var sums []entry
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"<sha256>  <name>\", got %q", n, line)
		}
		sum, name := strings.ToLower(f[0]), strings.TrimPrefix(f[1], "*")
		if b, err := hex.DecodeString(sum); err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("line %d: bad sha256 %q", n, f[0])
		}
		// Names become file names in the unpack directory: no paths, nothing hidden.
		if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
			return nil, fmt.Errorf("line %d: bad name %q", n, f[1])
		}
		if seen[name] {
			return nil, fmt.Errorf("line %d: %q listed twice", n, name)
		}
		seen[name] = true
		sums = append(sums, entry{name: name, sum: sum})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(sums) == 0 {
		return nil, errors.New("lists no files")
	}
	sort.Slice(sums, func(i, j int) bool { return sums[i].name < sums[j].name })
	return sums, nil
}

// Hash is the sha256 (hex) of the bundle's SHA256SUMS: it changes whenever any program does,
// and names the directory Unpack writes to.
func (b *Bundle) Hash() string { return b.hash }

// Names lists the programs in the bundle, sorted.
func (b *Bundle) Names() []string {
	names := make([]string, len(b.sums))
	for i, e := range b.sums {
		names[i] = e.name
	}
	return names
}

// Sum returns the sha256 (hex) of the named program, as listed in SHA256SUMS.
func (b *Bundle) Sum(name string) (string, bool) {
	for _, e := range b.sums {
		if e.name == name {
			return e.sum, true
		}
	}
	return "", false
}

// Unpack unpacks the embedded bundle under dir; see (*Bundle).Unpack. The archive is not read
// again by this process: its pages are given back (package embedpages).
func Unpack(dir string) (binDir string, err error) {
	b, err := Embedded()
	if err != nil {
		return "", err
	}
	binDir, err = b.Unpack(dir)
	embedpages.Done(embedded, embeddedDir+"/"+ArchiveFile)
	return binDir, err
}

// Unpack writes the programs to <dir>/<hash>/bin/ with mode 0755 and returns that directory.
// The directory is content-addressed, so an upgraded ketch unpacks beside the old bundle
// (whose programs may still be running) instead of over it. Files already present with the
// right checksum are kept; anything else there under a bundle name (a partial write, a
// tampered file) is replaced. Every file is written to a temporary name and renamed into
// place, so a concurrent reader or a crash never sees a partial program, and every checksum is
// verified again after writing.
func (b *Bundle) Unpack(dir string) (binDir string, err error) {
	binDir = filepath.Join(dir, b.hash, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", fmt.Errorf("unpacking runtime bundle: %w", err)
	}
	wanted := map[string]entry{}
	for _, e := range b.sums {
		target := filepath.Join(binDir, e.name)
		if ok, _ := hasSum(target, e.sum); ok {
			if err := os.Chmod(target, 0o755); err != nil {
				return "", fmt.Errorf("unpacking runtime bundle: %w", err)
			}
			continue
		}
		wanted[e.name] = e
	}
	if len(wanted) > 0 {
		if err := b.extract(binDir, wanted); err != nil {
			return "", fmt.Errorf("unpacking runtime bundle: %w", err)
		}
	}
	for _, e := range b.sums {
		ok, err := hasSum(filepath.Join(binDir, e.name), e.sum)
		if err != nil {
			return "", fmt.Errorf("verifying runtime bundle: %w", err)
		}
		if !ok {
			return "", fmt.Errorf("verifying runtime bundle: %s does not match its sha256 %s after unpacking", filepath.Join(binDir, e.name), e.sum)
		}
	}
	return binDir, nil
}

// Program returns the path of the named program of the embedded bundle unpacked under dir; see
// (*Bundle).Program.
func Program(dir, name string) (string, error) {
	b, err := Embedded()
	if err != nil {
		return "", err
	}
	return b.Program(dir, name)
}

// Program returns the path of the named program in the bundle unpacked under dir (as Unpack
// returns it), for a command that runs one program of the bundle (ketch crictl). When the node
// has unpacked the bundle, only that program's checksum is checked; otherwise the whole bundle
// is unpacked, as the node would.
func (b *Bundle) Program(dir, name string) (string, error) {
	sum, ok := b.Sum(name)
	if !ok {
		return "", fmt.Errorf("runtime bundle: has no %s (%s lists %s)", name, SumsFile, strings.Join(b.Names(), ", "))
	}
	path := filepath.Join(dir, b.hash, "bin", name)
	if st, err := os.Stat(path); err == nil && st.Mode().Perm() == 0o755 {
		if ok, _ := hasSum(path, sum); ok {
			return path, nil
		}
	}
	binDir, err := b.Unpack(dir)
	if err != nil {
		return "", err
	}
	return filepath.Join(binDir, name), nil
}

// extract writes the wanted programs from the archive into binDir.
func (b *Bundle) extract(binDir string, wanted map[string]entry) error {
	src, err := b.fsys.Open(ArchiveFile)
	if err != nil {
		return err
	}
	defer src.Close()
	zr, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return fmt.Errorf("%s: %w", ArchiveFile, err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for len(wanted) > 0 {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", ArchiveFile, err)
		}
		e, ok := wanted[hdr.Name]
		if !ok || hdr.Typeflag != tar.TypeReg {
			continue
		}
		if err := write(binDir, e, tr); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		delete(wanted, e.name)
	}
	for name := range wanted {
		return fmt.Errorf("%s lacks %s, which %s lists (inconsistent build)", ArchiveFile, name, SumsFile)
	}
	return nil
}

// write copies one program next to its target, checks it while writing, and renames it into
// place.
func write(binDir string, e entry, r io.Reader) (err error) {
	tmp, err := os.CreateTemp(binDir, "."+e.name+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), r); err != nil {
		return fmt.Errorf("decompressing: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != e.sum {
		return fmt.Errorf("embedded file has sha256 %s, %s says %s (inconsistent build)", got, SumsFile, e.sum)
	}
	if err := tmp.Chmod(0o755); err != nil {
		return err
	}
	// Sync before the rename so that a crash cannot leave a renamed but empty program.
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(binDir, e.name))
}

// hasSum reports whether path is a regular file (not a symlink to one) with the given sha256.
func hasSum(path, sum string) (bool, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return false, err
	}
	if !st.Mode().IsRegular() {
		return false, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == sum, nil
}
