package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/internal/testutil"
)

// serverRun is one run of `ketch server` that must fail before it starts anything.
type serverRun struct {
	dataDir, runDir, kubeconfig string
	args                        []string
	// config is the --config file's content; "" writes an empty file (so that the host's
	// /etc/ketch/config.yaml is never read), and configPath overrides the path.
	config, configPath string
	// uid, when not 0, runs ketch as that user and group (the test must be root).
	uid int
}

// run runs ketch server with the test's dirs and returns its stderr and exit code, after
// checking that it started nothing: no log file, no server or agent state, nothing in the run
// dir, no kubeconfig, and no process left behind.
//
// As a guard, kube-apiserver's port is one this test holds unless the case names its own: if a
// check the case relies on stopped working, ketch still stops at the port check instead of
// starting a cluster on this machine.
func (r serverRun) run(t *testing.T) (string, int) {
	t.Helper()
	if r.dataDir == "" {
		r.dataDir = t.TempDir()
	}
	tmp := filepath.Dir(r.dataDir)
	if r.runDir == "" {
		r.runDir = filepath.Join(t.TempDir(), "run")
	}
	if r.kubeconfig == "" {
		r.kubeconfig = filepath.Join(t.TempDir(), "kc")
	}
	if r.configPath == "" {
		r.configPath = filepath.Join(t.TempDir(), "config.yaml")
		if r.uid != 0 {
			r.configPath = filepath.Join(tmp, "config.yaml")
		}
		if err := os.WriteFile(r.configPath, []byte(r.config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"server", "--data-dir", r.dataDir, "--run-dir", r.runDir, "--write-kubeconfig", r.kubeconfig, "--config", r.configPath}
	has := func(flag string) bool {
		return slices.ContainsFunc(r.args, func(a string) bool { return a == flag || strings.HasPrefix(a, flag+"=") }) ||
			strings.Contains(r.config, strings.TrimPrefix(flag, "--")+":")
	}
	// Neither this host's name nor its routes decide the outcome.
	if !has("--node-name") {
		args = append(args, "--node-name", "test-node")
	}
	if !has("--node-ip") {
		args = append(args, "--node-ip", "192.0.2.10")
	}
	if !has("--https-listen-port") {
		guard, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer guard.Close()
		args = append(args, "--bind-address", "127.0.0.1", "--https-listen-port", strconv.Itoa(guard.Addr().(*net.TCPAddr).Port))
	}
	args = append(args, r.args...)

	cmd := exec.Command(testutil.KetchBinary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if r.uid != 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(r.uid), Gid: uint32(r.uid)}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
		t.Errorf("ketch %s still running after 30s", strings.Join(args, " "))
	}
	t.Logf("ketch %s\nstderr: %s", strings.Join(args, " "), stderr.String())
	if stdout.Len() > 0 {
		t.Logf("stdout: %s", stdout.String())
	}

	// Nothing started: the dirs hold at most their lock files.
	for _, dir := range []string{r.dataDir, r.runDir} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.Name() != "ketch.pid" {
				t.Errorf("%s has %s: ketch started something", dir, e.Name())
			}
		}
	}
	for _, p := range []string{filepath.Join(r.dataDir, "logs", "ketch.log"), r.kubeconfig} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists (%v): ketch started something", p, err)
		}
	}
	if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
		syscall.Kill(-pgid, syscall.SIGKILL)
		t.Errorf("processes of ketch's group %d are left (%v)", pgid, err)
	}
	for _, pid := range processesMentioning(r.dataDir, r.runDir) {
		t.Errorf("process %d, which names the test's dirs, is left", pid)
	}
	return stderr.String(), cmd.ProcessState.ExitCode()
}

// holdLock takes dir's lock exactly as a running ketch does (flock on dir/ketch.pid, holding
// its pid) until the test ends, and returns the pid it wrote.
func holdLock(t *testing.T, dir string) string {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "ketch.pid"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(os.Getpid())
	if _, err := f.WriteString(pid + "\n"); err != nil {
		t.Fatal(err)
	}
	return pid
}

// processesMentioning lists the processes whose command line contains any of the strings.
func processesMentioning(strs ...string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if slices.ContainsFunc(strs, func(s string) bool { return bytes.Contains(b, []byte(s)) }) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestServerBadInput runs `ketch server` with bad settings and in bad situations: each run must
// exit non-zero, before starting anything, with a message that names the problem.
func TestServerBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    serverRun
		want []string
	}{
		{"cluster CIDR prefix", serverRun{args: []string{"--cluster-cidr", "10.42.0.0/33"}},
			[]string{`--cluster-cidr "10.42.0.0/33" is not a CIDR (like 10.42.0.0/16)`}},
		{"cluster CIDR not a CIDR", serverRun{args: []string{"--cluster-cidr", "banana"}},
			[]string{`--cluster-cidr "banana" is not a CIDR (like 10.42.0.0/16)`}},
		{"cluster CIDR host bits", serverRun{args: []string{"--cluster-cidr", "10.42.0.1/16"}},
			[]string{`--cluster-cidr "10.42.0.1/16" has host bits set; did you mean 10.42.0.0/16?`}},
		{"overlapping CIDRs", serverRun{args: []string{"--cluster-cidr", "10.0.0.0/8", "--service-cidr", "10.43.0.0/16"}},
			[]string{`--cluster-cidr 10.0.0.0/8 and --service-cidr 10.43.0.0/16 overlap: pods and services need separate ranges`}},
		{"cluster DNS outside the service CIDR", serverRun{args: []string{"--cluster-dns", "10.42.0.10"}},
			[]string{`--cluster-dns 10.42.0.10 is outside --service-cidr 10.43.0.0/16`}},
		{"node IP", serverRun{args: []string{"--node-ip", "10.0.0.300"}},
			[]string{`--node-ip "10.0.0.300" is not an IP address`}},
		{"node name", serverRun{args: []string{"--node-name", "My_Node"}},
			[]string{`--node-name "my_node" is not a valid Kubernetes node name`, "lowercase RFC 1123 subdomain"}},
		{"kubeconfig mode", serverRun{args: []string{"--write-kubeconfig-mode", "rw-r--r--"}},
			[]string{`--write-kubeconfig-mode: "rw-r--r--" is not an octal file mode like 0600`}},
		{"kubelet arg with dashes", serverRun{args: []string{"--kubelet-arg=--foo=bar"}},
			[]string{`--kubelet-arg "--foo=bar" must be flag=value, without leading dashes`}},
		{"unknown addon to disable", serverRun{args: []string{"--disable", "coredns,traefik"}},
			[]string{`--disable "traefik" is not a bundled addon; the addons are coredns, dashboard, local-storage, metrics-server, servicelb`}},
		{"unknown addon to disable in the config file", serverRun{config: "disable: [metrics-server, traefik]\n"},
			[]string{`--disable "traefik" is not a bundled addon`}},
		{"several problems at once", serverRun{args: []string{"--cluster-cidr", "banana", "--node-ip", "x", "--kube-proxy-arg", "--v=2"}},
			[]string{`--cluster-cidr "banana"`, `--node-ip "x"`, `--kube-proxy-arg "--v=2"`}},

		// The config file.
		{"config file unknown key", serverRun{config: "cluster-cidr: 10.42.0.0/16\nclustr-dns: 10.43.0.10\n"},
			[]string{`unknown key "clustr-dns"; the keys are the long flag names of ` + "`ketch server --help`"}},
		{"config file not YAML", serverRun{config: "cluster-cidr: [10.42.0.0/16\n"},
			[]string{"config file ", "config.yaml: error converting YAML to JSON: yaml: line 1"}},
		{"config file key with a map", serverRun{config: "kubelet-arg:\n  max-pods: 200\n"},
			[]string{`key "kubelet-arg" must be a value or a list of values`}},
		{"config file given but missing", serverRun{configPath: "/nonexistent/ketch-test/config.yaml"},
			[]string{"reading config file: open /nonexistent/ketch-test/config.yaml: no such file or directory"}},
		{"config file is read", serverRun{config: "cluster-cidr: 10.42.0.0/33\n"},
			[]string{`--cluster-cidr "10.42.0.0/33" is not a CIDR`}},
		{"config file lists are read", serverRun{config: "kube-proxy-arg:\n  - v=2\n  - --oops=1\n"},
			[]string{`--kube-proxy-arg "--oops=1" must be flag=value`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stderr, code := tc.r.run(t)
			if code == 0 {
				t.Errorf("exit code 0")
			}
			for _, want := range tc.want {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr)
				}
			}
			if !strings.HasPrefix(stderr, "ketch: ") {
				t.Errorf("stderr does not start with \"ketch: \":\n%s", stderr)
			}
		})
	}

	t.Run("flags win over the config file", func(t *testing.T) {
		stderr, code := serverRun{
			config: "cluster-cidr: 10.99.0.0/33\nservice-cidr: 10.43.0.0/16\n",
			args:   []string{"--cluster-cidr", "10.42.0.0/33"},
		}.run(t)
		if code == 0 || !strings.Contains(stderr, `--cluster-cidr "10.42.0.0/33" is not a CIDR`) || strings.Contains(stderr, "10.99") {
			t.Errorf("exit %d, want the flag's value in the error and not the file's:\n%s", code, stderr)
		}
	})

	// A dir another ketch holds. Another node's run dir would have its sockets (containerd's,
	// the datastore's) replaced.
	for _, tc := range []struct {
		what string
		with func(dir string) serverRun
	}{
		{"data dir", func(dir string) serverRun { return serverRun{dataDir: dir} }},
		{"run dir", func(dir string) serverRun { return serverRun{runDir: dir} }},
	} {
		t.Run(tc.what+" in use", func(t *testing.T) {
			if os.Geteuid() != 0 {
				t.Skip("needs root: the host check (run as root) comes before the dirs")
			}
			dir := t.TempDir()
			pid := holdLock(t, dir)
			stderr, code := tc.with(dir).run(t)
			want := "ketch: " + tc.what + " " + dir + " is in use by another running ketch (pid " + pid + "); stop it or pass another --" + strings.ReplaceAll(tc.what, " ", "-")
			if code == 0 || !strings.Contains(stderr, want) {
				t.Errorf("exit %d, want %q:\n%s", code, want, stderr)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "ketch.pid")); string(b) != pid+"\n" {
				t.Errorf("the holder's ketch.pid now holds %q", b)
			}
		})
	}

	t.Run("not root", func(t *testing.T) {
		r := serverRun{}
		uid := os.Geteuid()
		if uid == 0 {
			// Run as nobody, in dirs nobody can use, so that only being root is missing.
			uid = 65534
			base, err := os.MkdirTemp("", "ketch-server-test-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(base) })
			r.dataDir = filepath.Join(base, "data")
			if err := os.Mkdir(r.dataDir, 0o777); err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{base, r.dataDir} {
				if err := os.Chmod(d, 0o777); err != nil {
					t.Fatal(err)
				}
			}
			r.uid = uid
		}
		stderr, code := r.run(t)
		want := "ketch: this host cannot run a ketch node; missing: root privileges (running as uid " + strconv.Itoa(uid) + ")"
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, want %q:\n%s", code, want, stderr)
		}
	})

	t.Run("port in use", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root: the host check (run as root) comes before the port check")
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		stderr, code := serverRun{args: []string{"--bind-address", "127.0.0.1", "--https-listen-port", port}}.run(t)
		if strings.Contains(stderr, "this host cannot run a ketch node") {
			t.Skipf("this host fails the host check, which comes first:\n%s", stderr)
		}
		for _, want := range []string{
			"ketch: another process already listens where ketch must; stop it (another ketch, k3s or kubelet? `ss -ltnp` names it) or move ketch's listener:",
			"127.0.0.1:" + port + ", for kube-apiserver (to use another: --https-listen-port or --bind-address)",
		} {
			if code == 0 || !strings.Contains(stderr, want) {
				t.Errorf("exit %d, want %q:\n%s", code, want, stderr)
			}
		}
	})
}

// TestServerStopsDuringStartup: SIGTERM at any phase of a server's start-up stops it within a
// few seconds, cleanly (exit 0), saying which step start-up was waiting on.
func TestServerStopsDuringStartup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a server runs only as root")
	}
	testutil.LockHost(t)
	for _, tc := range []struct{ after, waiting string }{
		{"datastore ready", "kube-apiserver"},
		{"apiserver ready", ""},
		{"node registered", "node test-node to be Ready"},
	} {
		t.Run("after "+tc.after, func(t *testing.T) {
			// Unix sockets under both dirs (containerd's shims, the kubelet's) need short paths.
			cfg := harness.ServerConfig{Bin: testutil.KetchBinary(t), RunDir: shortTempDir(t, "/run"), DataDir: shortTempDir(t, "/var/tmp")}
			cfg.Kubeconfig, cfg.Output = filepath.Join(cfg.DataDir, "kubeconfig"), filepath.Join(cfg.DataDir, "output")
			addr, err := harness.FreeLoopbackAddr()
			if err != nil {
				t.Fatal(err)
			}
			_, port, _ := net.SplitHostPort(addr)
			cfg.Args = []string{"--config", emptyConfig(t), "--node-name", "test-node", "--bind-address", "127.0.0.1", "--https-listen-port", port}
			s, err := harness.StartServer(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				s.Stop(time.Second)
				if err := harness.Killall(context.Background(), filepath.Join(testutil.RepoRoot(), "package", "ketch-killall.sh"), cfg.DataDir, cfg.RunDir); err != nil {
					t.Error(err)
				}
				s.Close()
				if t.Failed() {
					t.Logf("log:\n%s", s.LogTail(200))
				}
			})
			deadline := time.Now().Add(3 * time.Minute)
			for !slices.ContainsFunc(s.Phases(), func(p harness.PhaseTime) bool { return p.Name == tc.after }) {
				if s.Exited() {
					t.Fatalf("the server exited (%v) before %q:\n%s", s.Wait(), tc.after, s.Output())
				}
				if time.Now().After(deadline) {
					t.Fatalf("no %q after 3 minutes:\n%s", tc.after, s.Output())
				}
				time.Sleep(20 * time.Millisecond)
			}
			stopCleanly(t, s.Process, 15*time.Second, s.Output)
			want := "ketch: stopping before the node started (it was waiting for " + tc.waiting
			if !strings.Contains(s.Output(), want) {
				t.Errorf("output lacks %q:\n%s", want, s.Output())
			}
			t.Logf("output:\n%s", s.Output())
		})
	}
}

// stopCleanly sends SIGTERM to p and checks that it exits within grace, with status 0.
func stopCleanly(t *testing.T, p *harness.Process, grace time.Duration, output func() string) {
	t.Helper()
	took, err := p.Stop(syscall.SIGTERM, grace)
	if err != nil {
		t.Fatalf("%v:\n%s", err, output())
	}
	if code := p.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want a clean stop:\n%s", code, output())
	}
	t.Logf("stopped %s after SIGTERM", took.Round(time.Millisecond))
}

// shortTempDir is a new directory under parent, removed when the test ends.
func shortTempDir(t *testing.T, parent string) string {
	t.Helper()
	dir, err := os.MkdirTemp(parent, "kt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// emptyConfig is an empty config file, so that the host's /etc/ketch/config.yaml is never read.
func emptyConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
