package nodeimage

import (
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestAssemble builds a context from this machine's Debian system (iptables and mount are
// installed by scripts/install-deps.sh) with the test binary standing in for ketch.
func TestAssemble(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := Assemble(Options{Ketch: self, Arch: runtime.GOARCH, Sysroot: "/", Out: out}); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(out, "rootfs")
	lib := "/usr/lib/" + Triplets[runtime.GOARCH]
	for _, f := range []string{"/bin/ketch", "/usr/sbin/xtables-nft-multi", "/usr/bin/mount", "/usr/bin/umount",
		lib + "/libc.so.6", lib + "/libxtables.so.12", lib + "/libmount.so.1", lib + "/xtables/libxt_comment.so",
		"/etc/ssl/certs/ca-certificates.crt", "/etc/passwd", "/etc/group", "/etc/os-release"} {
		if st, err := os.Lstat(filepath.Join(root, f)); err != nil || !st.Mode().IsRegular() {
			t.Errorf("%s: %v (a regular file is wanted)", f, err)
		}
	}
	for link, target := range map[string]string{"/usr/sbin/iptables": "xtables-nft-multi", "/usr/sbin/iptables-restore": "xtables-nft-multi",
		"/bin/kubectl": "ketch", "/var/run": "../run"} {
		if got, err := os.Readlink(filepath.Join(root, link)); err != nil || got != target {
			t.Errorf("%s -> %q (%v), want -> %s", link, got, err, target)
		}
	}
	// Every program and library finds its loader and every library it needs inside the image.
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || strings.HasPrefix(path, filepath.Join(root, "bin")) {
			return err
		}
		f, err := elf.Open(path)
		if err != nil {
			return nil // not an ELF file
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				b, _ := io.ReadAll(p.Open())
				if _, err := os.Stat(filepath.Join(root, strings.TrimRight(string(b), "\x00"))); err != nil {
					t.Errorf("%s: its loader is missing: %v", path, err)
				}
			}
		}
		libs, _ := f.ImportedLibraries()
		for _, l := range libs {
			_, inLib := os.Stat(filepath.Join(root, lib, l))
			_, isLoader := os.Stat(filepath.Join(root, "lib64", l))
			_, isLoader2 := os.Stat(filepath.Join(root, "lib", l))
			if inLib != nil && isLoader != nil && isLoader2 != nil {
				t.Errorf("%s needs %s, which is not in the image", path, l)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(root, "tmp")); err != nil || st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o777 {
		t.Errorf("/tmp: %v %v, want a sticky 1777 directory", st.Mode(), err)
	}
	size, err := Size(root)
	if err != nil {
		t.Fatal(err)
	}
	self0, _ := os.Stat(self)
	if extra := size - self0.Size(); extra > 10<<20 {
		t.Errorf("the image adds %d bytes to the binary, over 10 MiB", extra)
	}
}

func TestAssembleRefuses(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	other := map[string]string{"amd64": "arm64", "arm64": "amd64", "arm": "amd64"}[runtime.GOARCH]
	for name, tc := range map[string]struct {
		o    Options
		want string
	}{
		"a binary of another architecture": {Options{Ketch: self, Arch: other, Sysroot: "/"}, "make build ARCH=" + other},
		"an unknown architecture":          {Options{Ketch: self, Arch: "riscv64", Sysroot: "/"}, "no node image for architecture"},
		"no binary":                        {Options{Ketch: "/nonexistent/ketch", Arch: runtime.GOARCH, Sysroot: "/"}, "make build first"},
		"an empty system root":             {Options{Ketch: self, Arch: runtime.GOARCH, Sysroot: t.TempDir()}, "unpacked"},
	} {
		tc.o.Out = t.TempDir()
		if err := Assemble(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}
