package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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
			[]string{`--disable "traefik" is not a bundled addon; the addons are coredns, local-storage, metrics-server, servicelb`}},
		{"unknown addon to disable in the config file", serverRun{config: "disable: [metrics-server, dashboard]\n"},
			[]string{`--disable "dashboard" is not a bundled addon`}},
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

	t.Run("data dir in use", func(t *testing.T) {
		dataDir := t.TempDir()
		pid := holdLock(t, dataDir)
		stderr, code := serverRun{dataDir: dataDir}.run(t)
		want := "ketch: data dir " + dataDir + " is in use by another running ketch (pid " + pid + "); stop it or pass another --data-dir"
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, want %q:\n%s", code, want, stderr)
		}
		if b, _ := os.ReadFile(filepath.Join(dataDir, "ketch.pid")); string(b) != pid+"\n" {
			t.Errorf("the holder's ketch.pid now holds %q", b)
		}
	})

	// Another node's run dir: its sockets (containerd's, the datastore's) would be replaced.
	t.Run("run dir in use", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root: the host check (run as root) comes before the dirs")
		}
		runDir := t.TempDir()
		pid := holdLock(t, runDir)
		stderr, code := serverRun{runDir: runDir}.run(t)
		want := "ketch: run dir " + runDir + " is in use by another running ketch (pid " + pid + "); stop it or pass another --run-dir"
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, want %q:\n%s", code, want, stderr)
		}
		if b, _ := os.ReadFile(filepath.Join(runDir, "ketch.pid")); string(b) != pid+"\n" {
			t.Errorf("the holder's ketch.pid now holds %q", b)
		}
	})

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
			base := t.TempDir()
			// Unix sockets under both dirs (containerd's shims, the kubelet's) need short paths.
			runDir, err := os.MkdirTemp("/run", "kt-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(runDir) })
			dataDir, err := os.MkdirTemp("/var/tmp", "kt-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dataDir) })
			guard, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := strconv.Itoa(guard.Addr().(*net.TCPAddr).Port)
			guard.Close()
			config := filepath.Join(base, "config.yaml")
			os.WriteFile(config, nil, 0o644)
			cmd := exec.Command(testutil.KetchBinary(t), "server", "--data-dir", dataDir, "--run-dir", runDir, "--config", config,
				"--write-kubeconfig", filepath.Join(base, "kubeconfig"), "--node-name", "test-node",
				"--bind-address", "127.0.0.1", "--https-listen-port", port)
			var out syncBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				cmd.Process.Kill()
				killall := exec.Command(filepath.Join(testutil.RepoRoot(), "scripts", "ketch-killall.sh"))
				killall.Env = append(os.Environ(), "KETCH_DATA_DIR="+dataDir, "KETCH_RUN_DIR="+runDir)
				if b, err := killall.CombinedOutput(); err != nil {
					t.Errorf("ketch-killall.sh: %v\n%s", err, b)
				}
				if t.Failed() {
					b, _ := os.ReadFile(filepath.Join(dataDir, "logs", "ketch.log"))
					t.Logf("log:\n%s", b)
				}
			})
			deadline := time.Now().Add(3 * time.Minute)
			for !strings.Contains(out.String(), "ketch: "+tc.after) {
				select {
				case err := <-exited:
					t.Fatalf("the server exited (%v) before %q:\n%s", err, tc.after, out.String())
				case <-time.After(20 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("no %q after 3 minutes:\n%s", tc.after, out.String())
				}
			}
			cmd.Process.Signal(syscall.SIGTERM)
			start := time.Now()
			select {
			case err := <-exited:
				if err != nil {
					t.Errorf("exit after SIGTERM: %v, want a clean stop", err)
				}
				t.Logf("stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
			case <-time.After(15 * time.Second):
				t.Fatalf("the server was still running 15s after SIGTERM:\n%s", out.String())
			}
			want := "ketch: stopping before the node started (it was waiting for " + tc.waiting
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
			t.Logf("output:\n%s", out.String())
		})
	}
}

// syncBuffer is a process's output, read while the process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
