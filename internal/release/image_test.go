//go:build release

package release

import (
	"archive/tar"
	"context"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ketch-k8s/ketch/internal/nodeimage"
)

// testImage checks the node image make release-images built for tg: the saved tarball's image
// declares tg's architecture and holds this release's binary, and the programs of its context
// (mount, iptables through the nf_tables multi-call program) load with the image's own loader
// and libraries, under qemu for a foreign architecture. iptables cannot do more than print its
// version under qemu, which does not translate nf_tables netlink; the docker tests run it for
// real on this machine's architecture.
func testImage(t *testing.T, tg target, bin string) {
	dir := root(t)
	archive := filepath.Join(dir, "dist", "ketch-image-"+tg.goarch+".tar")
	f, err := os.Open(archive)
	if err != nil {
		t.Fatalf("%v: run make release-images", err)
	}
	defer f.Close()
	var manifest []struct{ Config string }
	configs := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", archive, err)
		}
		if h.Name == "manifest.json" || strings.HasSuffix(h.Name, ".json") {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if h.Name == "manifest.json" {
				if err := json.Unmarshal(b, &manifest); err != nil {
					t.Fatalf("%s: manifest.json: %v", archive, err)
				}
			} else {
				configs[h.Name] = b
			}
		}
	}
	if len(manifest) != 1 {
		t.Fatalf("%s: %d images, want 1", archive, len(manifest))
	}
	var config struct {
		Architecture, OS, Variant string
		Config                    struct{ Entrypoint, Cmd []string }
	}
	if err := json.Unmarshal(configs[manifest[0].Config], &config); err != nil {
		t.Fatalf("%s: the image config %s: %v", archive, manifest[0].Config, err)
	}
	wantVariant := map[string]string{"arm": "v7"}[tg.goarch]
	if config.Architecture != tg.goarch || config.OS != "linux" || config.Variant != wantVariant {
		t.Errorf("%s: the image is for %s/%s/%s, want linux/%s/%s", archive, config.OS, config.Architecture, config.Variant, tg.goarch, wantVariant)
	}
	if strings.Join(config.Config.Entrypoint, " ") != "/bin/ketch" || strings.Join(config.Config.Cmd, " ") != "agent" {
		t.Errorf("%s: entrypoint %v, cmd %v", archive, config.Config.Entrypoint, config.Config.Cmd)
	}

	rootfs := filepath.Join(dir, "dist", "image", "context-"+tg.goarch, "rootfs")
	got, err := os.ReadFile(filepath.Join(rootfs, "bin", "ketch"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("the image context's /bin/ketch is not %s", bin)
	}
	for _, p := range []string{"usr/sbin/xtables-nft-multi", "usr/bin/mount", "usr/bin/umount"} {
		checkExecutable(t, tg, filepath.Join(rootfs, p), false)
	}
	for _, args := range [][]string{{"usr/bin/mount", "--version"}, {"usr/sbin/xtables-nft-multi", "iptables-save", "-V"}} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := tg.commandIn(ctx, t, rootfs, args[0], args[1:]...).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("%s in the image: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// interp is the program interpreter an executable names, "" for a static one.
func interp(f *elf.File) string {
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, _ := io.ReadAll(p.Open())
			return strings.TrimRight(string(b), "\x00")
		}
	}
	return ""
}

// commandIn runs prog of the image's root file system with the image's own loader and
// libraries, without entering it: under qemu with the root as its library prefix, or natively
// through the loader with the image's library directory.
func (tg target) commandIn(ctx context.Context, t *testing.T, rootfs, prog string, args ...string) *exec.Cmd {
	t.Helper()
	path := filepath.Join(rootfs, prog)
	if tg.goarch != runtime.GOARCH {
		qemu, err := exec.LookPath(tg.qemu)
		if err != nil {
			t.Fatalf("%s: %v: scripts/install-deps.sh --release installs qemu-user-static", tg.qemu, err)
		}
		return exec.CommandContext(ctx, qemu, append([]string{"-L", rootfs, path}, args...)...)
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libDir := filepath.Join(rootfs, "usr", "lib", nodeimage.Triplets[tg.goarch])
	return exec.CommandContext(ctx, filepath.Join(rootfs, interp(f)), append([]string{"--library-path", libDir, path}, args...)...)
}
