//go:build release

package release

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/pkg/bundle"
)

// target is what a release binary for one GOARCH must be, and how to run its programs here.
type target struct {
	goarch  string
	machine elf.Machine
	class   elf.Class
	qemu    string // Debian's qemu-user-static program for it
}

var targets = map[string]target{
	"amd64": {"amd64", elf.EM_X86_64, elf.ELFCLASS64, "qemu-x86_64-static"},
	"arm64": {"arm64", elf.EM_AARCH64, elf.ELFCLASS64, "qemu-aarch64-static"},
	"arm":   {"arm", elf.EM_ARM, elf.ELFCLASS32, "qemu-arm-static"},
}

// command runs prog, a program built for tg, natively when this machine is of its architecture
// and otherwise under qemu user emulation, with qemu named explicitly: that needs no binfmt_misc
// registration on the host (none is made or assumed). A program run that way that starts
// another foreign program would need binfmt_misc, so the tests below start each program
// themselves.
func (tg target) command(ctx context.Context, t *testing.T, prog string, args ...string) *exec.Cmd {
	t.Helper()
	if tg.goarch == runtime.GOARCH {
		return exec.CommandContext(ctx, prog, args...)
	}
	qemu, err := exec.LookPath(tg.qemu)
	if err != nil {
		t.Fatalf("%s: %v: scripts/install-deps.sh --release installs qemu-user-static", tg.qemu, err)
	}
	return exec.CommandContext(ctx, qemu, append([]string{prog}, args...)...)
}

// root is the repository (this package is internal/release).
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// arches are the release's architectures: KETCH_RELEASE_ARCHES (the Makefile's RELEASE_ARCHES)
// or all three.
func arches() []string {
	if s := strings.Fields(os.Getenv("KETCH_RELEASE_ARCHES")); len(s) > 0 {
		return s
	}
	return []string{"amd64", "arm64", "arm"}
}

// TestSums: dist/ holds the binaries, install.sh and its templates (package/) as in the
// repository, and dist/sha256sum.txt lists exactly those, by their names in dist/, and passes
// `sha256sum -c` there.
func TestSums(t *testing.T) {
	dir := root(t)
	dist := filepath.Join(dir, "dist")
	raw, err := os.ReadFile(filepath.Join(dist, "sha256sum.txt"))
	if err != nil {
		t.Fatalf("%v: run make release", err)
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	line := regexp.MustCompile(`^[0-9a-f]{64}  ([a-z0-9][a-z0-9./-]*)$`)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil || strings.Contains(m[1], "..") || strings.HasPrefix(m[1], "dist/") {
			t.Errorf("sha256sum.txt: line %q is not \"<sha256>  <name in dist/>\"", sc.Text())
			continue
		}
		names = append(names, m[1])
	}
	want := []string{"install.sh"}
	for _, a := range arches() {
		want = append(want, "ketch-linux-"+a)
	}
	pkgs, err := filepath.Glob(filepath.Join(dir, "package", "*"))
	if err != nil || len(pkgs) == 0 {
		t.Fatalf("package/: %v, %d files", err, len(pkgs))
	}
	for _, p := range pkgs {
		want = append(want, "package/"+filepath.Base(p))
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("sha256sum.txt lists %v, want %v", names, want)
	}
	// install.sh downloads these templates from a release directory.
	script, err := os.ReadFile(filepath.Join(dir, "install.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^templates="([^"]+)"`).FindSubmatch(script)
	if m == nil {
		t.Fatal(`install.sh has no templates="..." line`)
	}
	for _, tmpl := range strings.Fields(string(m[1])) {
		if !slices.Contains(names, "package/"+tmpl) {
			t.Errorf("install.sh needs package/%s, which the release lacks", tmpl)
		}
	}
	for _, name := range want {
		if strings.HasPrefix(name, "ketch-linux-") {
			continue
		}
		got, err1 := os.ReadFile(filepath.Join(dist, name))
		src, err2 := os.ReadFile(filepath.Join(dir, name))
		if err1 != nil || err2 != nil || !bytes.Equal(got, src) {
			t.Errorf("dist/%s is not the repository's %s (%v, %v)", name, name, err1, err2)
		}
	}
	cmd := exec.Command("sha256sum", "-c", "sha256sum.txt")
	cmd.Dir = dist
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("sha256sum -c sha256sum.txt in dist: %v\n%s", err, out)
	}
	t.Logf("sha256sum -c:\n%s", out)
}

func TestRelease(t *testing.T) {
	for _, arch := range arches() {
		tg, ok := targets[arch]
		if !ok {
			t.Fatalf("no release target %q (KETCH_RELEASE_ARCHES)", arch)
		}
		t.Run(arch, func(t *testing.T) { testTarget(t, tg) })
	}
}

func testTarget(t *testing.T, tg target) {
	dir := root(t)
	bin := filepath.Join(dir, "dist", "ketch-linux-"+tg.goarch)
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v: run make release", err)
	}
	if tg.goarch != runtime.GOARCH {
		t.Logf("running %s programs under %s, named explicitly", tg.goarch, tg.qemu)
	}
	bundleDir := filepath.Join(dir, "pkg", "bundle", "bin", "linux_"+tg.goarch)
	addonsDir := filepath.Join(dir, "pkg", "images", "addons", "linux_"+tg.goarch)
	pauseBin := filepath.Join(dir, "pkg", "images", "pause", "linux_"+tg.goarch, "pause")

	t.Run("elf", func(t *testing.T) {
		checkELF(t, tg, bin)
		checkELF(t, tg, pauseBin)
	})

	t.Run("embeds", func(t *testing.T) { checkEmbeds(t, tg, bin) })

	// The bundle as a node unpacks it (pkg/bundle, the code the agent runs), from the directory
	// the binary embeds (checked above), and each program run.
	t.Run("bundle", func(t *testing.T) {
		b, binDir := unpack(t, bundleDir)
		for _, name := range b.Names() {
			checkELF(t, tg, filepath.Join(binDir, name))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := tg.command(ctx, t, filepath.Join(binDir, "runc"), "--version").CombinedOutput()
		runcVersion := "runc version " + strings.TrimPrefix(modVersion(t, "github.com/opencontainers/runc"), "v")
		if err != nil || !strings.Contains(string(out), runcVersion) || !strings.Contains(string(out), "libseccomp") {
			t.Errorf("runc --version: %v: %s; want %q and libseccomp", err, out, runcVersion)
		} else {
			t.Logf("runc --version:\n%s", out)
		}
		out, err = tg.command(ctx, t, filepath.Join(binDir, "containerd-shim-runc-v2"), "-v").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Version:") || strings.Contains(string(out), "+unknown") {
			t.Errorf("containerd-shim-runc-v2 -v: %v: %s", err, out)
		}
		crictlVersion := "crictl version " + modVersion(t, "sigs.k8s.io/cri-tools")
		out, err = tg.command(ctx, t, filepath.Join(binDir, "crictl"), "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), crictlVersion) {
			t.Errorf("crictl --version: %v: %s; want %q", err, out, crictlVersion)
		}
		for _, p := range []string{"bridge", "host-local", "portmap"} {
			// Without CNI_COMMAND a plugin prints its version and exits non-zero.
			out, _ := tg.command(ctx, t, filepath.Join(binDir, p)).CombinedOutput()
			if !strings.Contains(string(out), "CNI") || strings.Contains(string(out), "version unknown") {
				t.Errorf("%s: %s", p, out)
			}
		}

		checkELF(t, tg, addonsProgram(t, addonsDir))
	})

	t.Run("version", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := tg.command(ctx, t, bin, "--version").CombinedOutput()
		if err != nil {
			t.Fatalf("ketch --version: %v: %s", err, out)
		}
		want := []string{
			"ketch version " + releaseVersion(t) + " (",
			"kubernetes " + modVersion(t, "k8s.io/kubernetes") + "\n",
			"containerd " + modVersion(t, "github.com/containerd/containerd/v2") + "\n",
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("ketch --version says %q, which lacks %q", out, w)
			}
		}
		t.Logf("ketch --version:\n%s", out)
	})

	// The host check reads /proc and /sys, which qemu user emulation passes through: the
	// command must run to its end and print its report as JSON. Its verdict on this host (exit
	// status 1 when a finding is fatal) is not under test here.
	t.Run("check-config", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := tg.command(ctx, t, bin, "check-config", "--output", "json")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if cmd.ProcessState == nil || err != nil && cmd.ProcessState.ExitCode() != 1 {
			t.Fatalf("ketch check-config --output json: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.Bytes(), stderr.Bytes())
		}
		var report struct {
			Findings []struct{ Group, Name, Status string }
		}
		if jerr := json.Unmarshal(stdout.Bytes(), &report); jerr != nil || len(report.Findings) == 0 {
			t.Fatalf("ketch check-config --output json (%v) did not print a JSON report with findings (%v)\nstdout:\n%s\nstderr:\n%s",
				err, jerr, stdout.Bytes(), stderr.Bytes())
		}
		count := map[string]int{}
		for _, f := range report.Findings {
			count[f.Status]++
			if f.Status == "fatal" {
				t.Logf("fatal finding on this host: %s/%s", f.Group, f.Name)
			}
		}
		t.Logf("ketch check-config --output json: exit status %d, %d findings %v", cmd.ProcessState.ExitCode(), len(report.Findings), count)
	})

	t.Run("datastore", func(t *testing.T) { testDatastore(t, tg, bin) })
	t.Run("image", func(t *testing.T) { testImage(t, tg, bin) })

	// The packages that embed the per-architecture outputs, tested on that architecture: the
	// images a node builds declare it (arm: linux/arm/v7), the embedded pause program is for
	// it, the embedded bundle unpacks. pkg/bundle's TestUnpack and TestTamper start the
	// unpacked programs themselves, which under qemu named explicitly would need binfmt_misc:
	// the bundle subtest above runs them instead.
	t.Run("unit", func(t *testing.T) {
		runUnitTests(t, tg, "./pkg/images", "")
		skip := ""
		if tg.goarch != runtime.GOARCH {
			skip = "^(TestUnpack|TestTamper)$"
		}
		runUnitTests(t, tg, "./pkg/bundle", skip)
	})
}

// unpack unpacks the compressed programs in dir (a bundle or the addon program) as pkg/bundle
// does on a node, and returns them with the directory they are in.
func unpack(t *testing.T, dir string) (*bundle.Bundle, string) {
	t.Helper()
	b, err := bundle.Open(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	binDir, err := b.Unpack(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b, binDir
}

// addonsProgram writes the addon program out of the addon image's layer in dir (as the Makefile
// made it) and returns its path.
func addonsProgram(t *testing.T, dir string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "layer.tar.zst"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("ketch-addons in %s/layer.tar.zst: %v", dir, err)
		}
		if hdr.Name != "ketch-addons" {
			continue
		}
		path := filepath.Join(t.TempDir(), "ketch-addons")
		out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, tr); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
}

// checkELF: path is a static executable for tg.
func checkELF(t *testing.T, tg target, path string) { checkExecutable(t, tg, path, true) }

// checkExecutable: path is an executable for tg, static or else dynamically linked.
func checkExecutable(t *testing.T, tg target, path string, static bool) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	defer f.Close()
	if f.Machine != tg.machine || f.Class != tg.class || f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		t.Errorf("%s: ELF %v %v %v, want an executable for %s (%v %v)", path, f.Class, f.Machine, f.Type, tg.goarch, tg.class, tg.machine)
	}
	switch dynamic := interp(f) != ""; {
	case static && dynamic:
		t.Errorf("%s: dynamically linked (has a program interpreter); want static", path)
	case !static && !dynamic:
		t.Errorf("%s: no program interpreter; want a dynamically linked program", path)
	}
	if tg.goarch == "arm" {
		// e_flags (ELF32 header offset 36, debug/elf does not decode it): EABI version 5, as
		// Debian's armhf.
		hdr := make([]byte, 40)
		raw, err := os.Open(path)
		if err == nil {
			_, err = raw.ReadAt(hdr, 0)
			raw.Close()
		}
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return
		}
		if flags := f.ByteOrder.Uint32(hdr[36:]); flags&0xff000000 != 0x05000000 {
			t.Errorf("%s: e_flags %#x, want EABI version 5", path, flags)
		}
	}
}

// checkEmbeds: bin carries tg's bundle, addon program and pause program, byte for byte the
// ones in the per-architecture directories, and no other architecture's.
func checkEmbeds(t *testing.T, tg target, bin string) {
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	dir := root(t)
	for arch := range targets {
		for _, file := range []string{
			filepath.Join("pkg", "bundle", "bin", "linux_"+arch, "SHA256SUMS"),
			filepath.Join("pkg", "bundle", "bin", "linux_"+arch, "programs.tar.zst"),
			filepath.Join("pkg", "images", "addons", "linux_"+arch, "SHA256SUMS"),
			filepath.Join("pkg", "images", "addons", "linux_"+arch, "layer.tar.zst"),
			filepath.Join("pkg", "images", "addons", "linux_"+arch, "layer.diffid"),
			filepath.Join("pkg", "images", "pause", "linux_"+arch, "pause"),
		} {
			want, err := os.ReadFile(filepath.Join(dir, file))
			if errors.Is(err, os.ErrNotExist) && arch != tg.goarch {
				continue // not built: certainly not embedded
			}
			if err != nil {
				t.Fatal(err)
			}
			switch has := bytes.Contains(data, want); {
			case arch == tg.goarch && !has:
				t.Errorf("%s does not embed %s", bin, file)
			case arch != tg.goarch && has:
				t.Errorf("%s embeds %s, another architecture's", bin, file)
			}
		}
	}
}

// testDatastore starts `ketch datastore` on a temporary dir and has an etcd v3 client (the
// one kube-apiserver uses) put, get, watch and delete a key, then stops it with SIGTERM.
func testDatastore(t *testing.T, tg target, bin string) {
	addr, err := harness.FreeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + addr
	logPath := filepath.Join(t.TempDir(), "datastore.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := tg.command(context.Background(), t, bin, "datastore", "--data-dir", t.TempDir(), "--listen-client-urls", endpoint)
	cmd.Stdout, cmd.Stderr = logf, logf
	t0 := time.Now()
	proc, err := harness.Start(cmd, syscall.SIGKILL)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			proc.Stop(syscall.SIGKILL, time.Second)
		}
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("datastore log:\n%s", log)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := harness.WaitEtcd(ctx, endpoint, proc.Done()); err != nil {
		t.Fatalf("ketch datastore did not answer: %v", err)
	}
	t.Logf("ketch datastore answered %s after start", time.Since(t0).Round(time.Millisecond))

	c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key, value := "/registry/release/"+tg.goarch, "ketch on "+tg.goarch
	put, err := c.Put(ctx, key, value)
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	// From the put's revision: the event comes from the history, however late the watch starts.
	watch := c.Watch(ctx, key, clientv3.WithRev(put.Header.Revision))
	got, err := c.Get(ctx, key)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(got.Kvs) != 1 || string(got.Kvs[0].Value) != value || got.Kvs[0].ModRevision != put.Header.Revision {
		t.Errorf("get %s = %v, want %q at revision %d", key, got.Kvs, value, put.Header.Revision)
	}
	select {
	case w := <-watch:
		if w.Err() != nil || len(w.Events) != 1 || string(w.Events[0].Kv.Value) != value {
			t.Errorf("watch %s: %v %v", key, w.Err(), w.Events)
		}
	case <-ctx.Done():
		t.Errorf("watch %s: no event", key)
	}
	del, err := c.Delete(ctx, key)
	if err != nil || del.Deleted != 1 {
		t.Errorf("delete %s: %v, %d deleted", key, err, del.Deleted)
	}
	st, err := c.Status(ctx, endpoint)
	if err != nil {
		t.Errorf("status: %v", err)
	} else {
		t.Logf("status: version %s, revision %d", st.Version, st.Header.Revision)
	}

	stopped = true
	if _, err := proc.Stop(syscall.SIGTERM, time.Minute); err != nil {
		t.Errorf("ketch datastore on SIGTERM: %v", err)
	} else if code := proc.ExitCode(); code != 0 {
		t.Errorf("ketch datastore exited with %d on SIGTERM", code)
	}
}

// runUnitTests compiles pkg's tests for tg (as the release builds it) and runs them in
// -short mode, natively or under qemu, skipping the tests that match skip.
func runUnitTests(t *testing.T, tg target, pkg, skip string) {
	test := filepath.Join(t.TempDir(), filepath.Base(pkg)+".test")
	build := exec.Command(goBin(), "test", "-c", "-o", test, pkg)
	build.Dir = root(t)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-trimpath", "GOOS=linux", "GOARCH="+tg.goarch, "GOARM="+goarm())
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c %s for %s: %v\n%s", pkg, tg.goarch, err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	args := []string{"-test.short", "-test.v", "-test.count=1"}
	if skip != "" {
		args = append(args, "-test.skip", skip)
	}
	cmd := tg.command(ctx, t, test, args...)
	// The tests read their testdata relative to the package directory.
	cmd.Dir = filepath.Join(root(t), pkg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s tests for %s: %v\n%s", pkg, tg.goarch, err, out)
		return
	}
	var passed []string
	for _, l := range strings.Split(string(out), "\n") {
		if name, ok := strings.CutPrefix(l, "--- PASS: "); ok {
			passed = append(passed, strings.Fields(name)[0])
		}
	}
	t.Logf("%s tests for %s passed: %s", pkg, tg.goarch, strings.Join(passed, " "))
}

// goBin is the go command that runs this test: go test puts its GOROOT/bin first in PATH
// (runtime.GOROOT is empty in a -trimpath build).
func goBin() string { return "go" }

// goarm is the Makefile's GOARM (passed by make test-release), 7 by default.
func goarm() string {
	if v := os.Getenv("GOARM"); v != "" {
		return v
	}
	return "7"
}

// releaseVersion is the version make stamped into the binaries: KETCH_VERSION (the Makefile's
// VERSION, which make test-release passes) or what the Makefile computes from git.
func releaseVersion(t *testing.T) string {
	if v := os.Getenv("KETCH_VERSION"); v != "" {
		return v
	}
	cmd := exec.Command("git", "describe", "--tags", "--always", "--dirty")
	cmd.Dir = root(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git describe: %v; set KETCH_VERSION", err)
	}
	return strings.TrimSpace(string(out))
}

// modVersion is the version go.mod pins for a module.
func modVersion(t *testing.T, module string) string {
	t.Helper()
	cmd := exec.Command(goBin(), "list", "-m", "-f", "{{.Version}}", module)
	cmd.Dir = root(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", module, err)
	}
	v := strings.TrimSpace(string(out))
	if v == "" {
		t.Fatalf("go list -m %s: no version", module)
	}
	return v
}
