package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/klauspost/compress/zstd"
)

// embeddedOrSkip returns the real bundle, or skips when this test binary was built without
// one (a plain `go test`; `make test` builds the bundle first).
func embeddedOrSkip(t *testing.T) *Bundle {
	t.Helper()
	b, err := Embedded()
	if errors.Is(err, ErrNotBuilt) {
		t.Skip("no runtime bundle embedded: run `make bundle` (make test does) to test the real runc and CNI plugins")
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// archive makes an ArchiveFile of the given programs, as build/bundle.mk does.
func archive(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// synthetic builds an in-memory bundle of shell scripts.
func synthetic(t *testing.T, files map[string]string) *Bundle {
	t.Helper()
	fsys := fstest.MapFS{ArchiveFile: &fstest.MapFile{Data: archive(t, files)}}
	var sums strings.Builder
	for name, content := range files {
		fmt.Fprintf(&sums, "%s  %s\n", sum([]byte(content)), name)
	}
	fsys[SumsFile] = &fstest.MapFile{Data: []byte(sums.String())}
	b, err := Open(fsys)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// checkUnpacked verifies every program of b in binDir: regular, mode 0755, right checksum.
func checkUnpacked(t *testing.T, b *Bundle, binDir string) {
	t.Helper()
	for _, e := range b.sums {
		p := filepath.Join(binDir, e.name)
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Mode().IsRegular() || st.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v, want a regular file with 0755", p, st.Mode())
		}
		if ok, err := hasSum(p, e.sum); !ok || err != nil {
			t.Errorf("%s: checksum mismatch (%v)", p, err)
		}
	}
	// No temporary files are left behind.
	ents, err := os.ReadDir(binDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestNotBuilt(t *testing.T) {
	_, err := Open(fstest.MapFS{".keep": &fstest.MapFile{}})
	if !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("got %v, want ErrNotBuilt", err)
	}
	if !strings.Contains(err.Error(), "build with make") {
		t.Errorf("error %q does not say how to fix it", err)
	}
	// The embedded bundle either is complete or says the same.
	if _, err := Unpack(t.TempDir()); err != nil && !errors.Is(err, ErrNotBuilt) {
		t.Errorf("Unpack of the embedded bundle: %v", err)
	}
}

func TestBadSums(t *testing.T) {
	good := sum([]byte("x"))
	for name, sums := range map[string]string{
		"empty":        "\n",
		"one field":    good + "\n",
		"short sum":    "abcd  runc\n",
		"not hex":      strings.Repeat("z", 64) + "  runc\n",
		"path":         good + "  ../runc\n",
		"hidden":       good + "  .runc\n",
		"listed twice": good + "  runc\n" + good + "  runc\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Open(fstest.MapFS{SumsFile: &fstest.MapFile{Data: []byte(sums)}}); err == nil || errors.Is(err, ErrNotBuilt) {
				t.Errorf("got %v, want a parse error", err)
			}
		})
	}
}

// TestInconsistentBuild: an archive whose content does not match SHA256SUMS, or that lacks a
// program SHA256SUMS lists, is refused and leaves nothing under the bundle name.
func TestInconsistentBuild(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"wrong content": {
			ArchiveFile: &fstest.MapFile{Data: archive(t, map[string]string{"a": "not what the sums say"})},
			SumsFile:    &fstest.MapFile{Data: []byte(sum([]byte("something else")) + "  a\n")},
		},
		"missing program": {
			ArchiveFile: &fstest.MapFile{Data: archive(t, map[string]string{"a": "a"})},
			SumsFile:    &fstest.MapFile{Data: []byte(sum([]byte("a")) + "  a\n" + sum([]byte("b")) + "  b\n")},
		},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := Open(fsys)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if _, err := b.Unpack(dir); err == nil || !strings.Contains(err.Error(), "inconsistent build") {
				t.Fatalf("got %v", err)
			}
			ents, _ := os.ReadDir(filepath.Join(dir, b.Hash(), "bin"))
			for _, e := range ents {
				if e.Name() != "a" || name == "wrong content" {
					t.Errorf("left %s behind", e.Name())
				}
			}
		})
	}
}

// TestSyntheticUnpack covers the unpack rules on a small bundle: content-addressed directory,
// skipping good files, rewriting bad ones, and a new version beside the old.
func TestSyntheticUnpack(t *testing.T) {
	dir := t.TempDir()
	v1 := synthetic(t, map[string]string{"hello": "#!/bin/sh\necho hello v1\n", "other": "#!/bin/sh\nexit 0\n"})
	binDir, err := v1.Unpack(dir)
	if err != nil {
		t.Fatal(err)
	}
	if binDir != filepath.Join(dir, v1.Hash(), "bin") {
		t.Errorf("binDir %s", binDir)
	}
	checkUnpacked(t, v1, binDir)
	if out, err := exec.Command(filepath.Join(binDir, "hello")).Output(); err != nil || string(out) != "hello v1\n" {
		t.Errorf("hello: %q %v", out, err)
	}

	// A wrong mode alone is repaired without rewriting.
	before := inode(t, filepath.Join(binDir, "other"))
	if err := os.Chmod(filepath.Join(binDir, "other"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := v1.Unpack(dir); err != nil {
		t.Fatal(err)
	}
	if inode(t, filepath.Join(binDir, "other")) != before {
		t.Error("a file with the right content was rewritten")
	}
	checkUnpacked(t, v1, binDir)

	// A symlink under a bundle name is replaced by the real file, even if it points at one
	// with the right content.
	elsewhere := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(elsewhere, []byte("#!/bin/sh\necho hello v1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(binDir, "hello"))
	if err := os.Symlink(elsewhere, filepath.Join(binDir, "hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := v1.Unpack(dir); err != nil {
		t.Fatal(err)
	}
	checkUnpacked(t, v1, binDir)

	// An upgrade goes beside the old version, which stays intact.
	v2 := synthetic(t, map[string]string{"hello": "#!/bin/sh\necho hello v2\n", "other": "#!/bin/sh\nexit 0\n"})
	if v2.Hash() == v1.Hash() {
		t.Fatal("different bundles have the same hash")
	}
	binDir2, err := v2.Unpack(dir)
	if err != nil {
		t.Fatal(err)
	}
	if binDir2 == binDir {
		t.Fatal("upgrade unpacked over the old bundle")
	}
	checkUnpacked(t, v1, binDir)
	checkUnpacked(t, v2, binDir2)
}

// TestProgram: a program the node unpacked is used as it is; a missing or damaged one, or a
// bundle not yet unpacked, is unpacked first.
func TestProgram(t *testing.T) {
	dir := t.TempDir()
	b := synthetic(t, map[string]string{"hello": "#!/bin/sh\necho hello\n", "other": "#!/bin/sh\nexit 0\n"})
	path, err := b.Program(dir, "hello")
	if err != nil {
		t.Fatal(err)
	}
	binDir := filepath.Join(dir, b.Hash(), "bin")
	if path != filepath.Join(binDir, "hello") {
		t.Errorf("path %s, want it in %s", path, binDir)
	}
	checkUnpacked(t, b, binDir)
	if out, err := exec.Command(path).Output(); err != nil || string(out) != "hello\n" {
		t.Errorf("hello: %q %v", out, err)
	}

	// Unpacked already: nothing is rewritten.
	before := inode(t, path)
	if _, err := b.Program(dir, "hello"); err != nil {
		t.Fatal(err)
	}
	if inode(t, path) != before {
		t.Error("an intact program was rewritten")
	}

	// Damaged or not executable: unpacked again.
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho tampered\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(binDir, "other"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Program(dir, "hello"); err != nil {
		t.Fatal(err)
	}
	checkUnpacked(t, b, binDir)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Program(dir, "hello"); err != nil {
		t.Fatal(err)
	}
	checkUnpacked(t, b, binDir)

	if _, err := b.Program(dir, "missing"); err == nil || !strings.Contains(err.Error(), "has no missing") {
		t.Errorf("a program not in the bundle: %v", err)
	}
}

// TestUnpack unpacks the real bundle that make built and runs its programs.
func TestUnpack(t *testing.T) {
	b := embeddedOrSkip(t)
	// Exactly these: build/bundle.mk builds nothing else (pause is pkg/images' business).
	if want := []string{"bridge", "containerd-shim-runc-v2", "crictl", "host-local", "portmap", "runc"}; !slices.Equal(b.Names(), want) {
		t.Errorf("bundle holds %v, want %v", b.Names(), want)
	}
	dir := t.TempDir()
	binDir, err := Unpack(dir)
	if err != nil {
		t.Fatal(err)
	}
	if binDir != filepath.Join(dir, b.Hash(), "bin") {
		t.Errorf("binDir %s, want %s", binDir, filepath.Join(dir, b.Hash(), "bin"))
	}
	checkUnpacked(t, b, binDir)

	// The programs run: runc with seccomp support, the CNI plugins with their pinned version.
	out, err := exec.Command(filepath.Join(binDir, "runc"), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "runc version") || !strings.Contains(string(out), "libseccomp") {
		t.Errorf("runc --version: %v: %s", err, out)
	}
	out, err = exec.Command(filepath.Join(binDir, "containerd-shim-runc-v2"), "-v").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Version:") || strings.Contains(string(out), "+unknown") {
		t.Errorf("containerd-shim-runc-v2 -v: %v: %s", err, out)
	}
	// crictl at the version go.mod pins, which follows the Kubernetes minor.
	out, err = exec.Command(filepath.Join(binDir, "crictl"), "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "crictl version v1.36.") {
		t.Errorf("crictl --version: %v: %s", err, out)
	}
	for _, p := range []string{"bridge", "host-local", "portmap"} {
		// Without CNI_COMMAND a plugin prints its version and exits non-zero.
		out, _ := exec.Command(filepath.Join(binDir, p)).CombinedOutput()
		if !strings.Contains(string(out), "CNI") || strings.Contains(string(out), "version unknown") {
			t.Errorf("%s: %s", p, out)
		}
	}

	// A second unpack keeps every file (same inodes).
	inodes := map[string]uint64{}
	for _, n := range b.Names() {
		inodes[n] = inode(t, filepath.Join(binDir, n))
	}
	if _, err := Unpack(dir); err != nil {
		t.Fatal(err)
	}
	for _, n := range b.Names() {
		if inode(t, filepath.Join(binDir, n)) != inodes[n] {
			t.Errorf("%s was rewritten although it was intact", n)
		}
	}
}

// TestTamper corrupts, truncates and removes unpacked programs; Unpack detects each and
// restores the original.
func TestTamper(t *testing.T) {
	b := embeddedOrSkip(t)
	dir := t.TempDir()
	binDir, err := b.Unpack(dir)
	if err != nil {
		t.Fatal(err)
	}
	runc := filepath.Join(binDir, "runc")
	f, err := os.OpenFile(runc, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("tampered"), 4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Truncate(filepath.Join(binDir, "bridge"), 100); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(binDir, "portmap")); err != nil {
		t.Fatal(err)
	}
	before := inode(t, runc)
	if _, err := b.Unpack(dir); err != nil {
		t.Fatal(err)
	}
	if inode(t, runc) == before {
		t.Error("corrupted runc was not replaced")
	}
	checkUnpacked(t, b, binDir)
	if out, err := exec.Command(runc, "--version").CombinedOutput(); err != nil {
		t.Errorf("restored runc: %v: %s", err, out)
	}
}
