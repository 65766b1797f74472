package dockertest

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ketch-k8s/ketch/pkg/lockfile"
)

// Rootfs is a Debian root file system for a host container.
type Rootfs struct {
	// Name names the image (ketch-test/NAME).
	Name string
	// Packages are installed on top of debootstrap's minbase.
	Packages []string
	// Setup is a shell script run in the root file system's directory (as the working
	// directory) once debootstrap is done, for the configuration a real host of the kind has.
	Setup string
}

// Suite is the Debian release of the root file systems: the machine's own, so that its apt
// sources serve it.
const Suite = "bookworm"

// Image makes the root file system with debootstrap, unless the cache has it, and imports it into
// the engine; it returns the image name. The Debian mirror is the first one this machine's apt
// sources name.
func (e *Engine) Image(t testing.TB, r Rootfs) string {
	t.Helper()
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", Suite, strings.Join(r.Packages, ","), r.Setup)
	tag := "ketch-test/" + r.Name + ":" + hex.EncodeToString(h.Sum(nil))[:12]
	if _, err := e.Run("image", "inspect", tag); err == nil {
		return tag
	}
	if err := os.MkdirAll(CacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Tests in several packages may make the same image at once.
	lock, err := lockfile.Acquire(t.Context(), filepath.Join(CacheDir, "rootfs.lock"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	if _, err := e.Run("image", "inspect", tag); err == nil {
		return tag
	}
	mirror, err := debianMirror()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		t.Fatal("debootstrap is missing: apt-get install debootstrap (scripts/install-deps.sh does)")
	}
	dir, err := os.MkdirTemp("/var/tmp", "ketch-rootfs-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	t.Logf("making the %s root file system with debootstrap from %s (minutes; cached in the engine afterwards)", r.Name, mirror)
	args := []string{"--variant=minbase"}
	if len(r.Packages) > 0 {
		args = append(args, "--include="+strings.Join(r.Packages, ","))
	}
	args = append(args, Suite, dir, mirror)
	if out, err := exec.Command("debootstrap", args...).CombinedOutput(); err != nil {
		t.Fatalf("debootstrap %s: %v\n%s", strings.Join(args, " "), err, tail(out, 3000))
	}
	if r.Setup != "" {
		cmd := exec.Command("sh", "-ec", r.Setup)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("setting up the %s root file system: %v\n%s", r.Name, err, out)
		}
	}
	tar := exec.Command("tar", "-C", dir, "--numeric-owner", "-c", ".")
	pipe, err := tar.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp := e.Command(t.Context(), "import", "-", tag)
	imp.Stdin = pipe
	if err := tar.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("docker import %s: %v\n%s", tag, err, out)
	}
	if err := tar.Wait(); err != nil {
		t.Fatalf("tar of the %s root file system: %v", r.Name, err)
	}
	return tag
}

// debianMirror is the first Debian archive (not the security one) in the machine's apt sources,
// deb822 or one-line style.
func debianMirror() (string, error) {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	files = append(files, "/etc/apt/sources.list")
	more, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	files = append(files, more...)
	for _, f := range files {
		file, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			var uris []string
			switch {
			case len(fields) >= 2 && fields[0] == "URIs:":
				uris = fields[1:]
			case len(fields) >= 3 && fields[0] == "deb":
				for _, f := range fields[1:] {
					if strings.Contains(f, "://") {
						uris = append(uris, f)
						break
					}
				}
			}
			for _, u := range uris {
				if !strings.Contains(u, "security") {
					file.Close()
					return u, nil
				}
			}
		}
		file.Close()
	}
	return "", fmt.Errorf("no Debian mirror in /etc/apt/sources.list or /etc/apt/sources.list.d: debootstrap needs one")
}
