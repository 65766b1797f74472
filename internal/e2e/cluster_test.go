package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/internal/testutil"
	"github.com/ketch-k8s/ketch/pkg/images"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// server is a real `ketch server` process on a temporary data dir.
type server struct {
	t          *testing.T
	bin        string
	dataDir    string
	runDir     string
	kubeconfig string
	args       []string
	proc       *harness.Server   // the running or last started process
	started    []*harness.Server // every process started, whose output pipes close at the end
	outPath    string
	client     kubernetes.Interface
}

// newServer prepares a server; the test's cleanup stops it and everything it started, and
// checks that the host is clean afterwards.
func newServer(t *testing.T, args ...string) *server {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: ketch server runs containers")
	}
	testutil.LockHost(t)
	// The run dir holds containerd's shim sockets, whose paths must stay short.
	runDir, err := os.MkdirTemp("/tmp", "ketch-e2e-run-")
	if err != nil {
		t.Fatal(err)
	}
	dataDir, err := os.MkdirTemp("", "ketch-e2e-data-")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{
		t: t, bin: testutil.KetchBinary(t), dataDir: dataDir, runDir: runDir,
		kubeconfig: filepath.Join(dataDir, "admin.yaml"), args: args,
		outPath: filepath.Join(dataDir, "server.out"),
	}
	t.Cleanup(s.cleanup)
	return s
}

// seedEchoImage leaves the tests' image, localhost/e2e/echo:oci, in the node's images dir,
// which the node imports when it starts.
func (s *server) seedEchoImage() {
	s.t.Helper()
	imagesDir := filepath.Join(s.dataDir, "agent", "images")
	if err := os.MkdirAll(imagesDir, 0o700); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(imagesDir, "echo-oci.tar.gz"), echoImage(s.t, "localhost/e2e/echo:oci", true), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// config is the server's command line; its output goes to outPath, across restarts.
func (s *server) config() harness.ServerConfig {
	return harness.ServerConfig{Bin: s.bin, DataDir: s.dataDir, RunDir: s.runDir, Kubeconfig: s.kubeconfig,
		Args: s.args, Output: s.outPath}
}

// start starts the server and waits until it reports the node Ready.
func (s *server) start() {
	s.t.Helper()
	p, err := harness.StartServer(s.config())
	if err != nil {
		s.t.Fatalf("starting ketch server: %v", err)
	}
	s.proc = p
	s.started = append(s.started, p)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		s.t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		s.t.Fatal(err)
	}
	s.client = kubernetes.NewForConfigOrDie(cfg)
}

// stop sends SIGTERM and waits for the server to exit, for a minute before it kills it.
func (s *server) stop() {
	s.t.Helper()
	if s.proc == nil {
		return
	}
	if _, err := s.proc.Stop(time.Minute); err != nil {
		s.t.Error(err)
	}
}

func (s *server) output() string {
	b, _ := os.ReadFile(s.outPath)
	return string(b)
}

func (s *server) logTail(n int) string {
	return harness.Tail(filepath.Join(s.dataDir, "logs", "ketch.log"), n)
}

// containerdSocket is the node's containerd, as `ketch images --address` takes it.
func (s *server) containerdSocket() string { return s.config().Socket() }

// ketch runs a ketch subcommand as a user would, with the server's kubeconfig.
func (s *server) ketch(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return harness.Ketch{Bin: s.bin, Kubeconfig: s.kubeconfig}.Run(ctx, stdin, args...)
}

// kubectl runs `ketch kubectl` and fails the test if it fails.
func (s *server) kubectl(args ...string) string {
	s.t.Helper()
	out, err := s.ketch("", append([]string{"kubectl"}, args...)...)
	if err != nil {
		s.t.Fatalf("ketch kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// apply applies a YAML manifest.
func (s *server) apply(manifest string) {
	s.t.Helper()
	if out, err := s.ketch(manifest, "kubectl", "apply", "-f", "-"); err != nil {
		s.t.Fatalf("kubectl apply: %v\n%s\n%s", err, out, manifest)
	}
}

// cleanup stops the server, runs ketch-killall.sh for its dirs, and checks the host is clean:
// no process, mount, shim, pod network link or iptables chain of this node left.
func (s *server) cleanup() {
	t := s.t
	s.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := harness.Killall(ctx, filepath.Join(testutil.RepoRoot(), "package", "ketch-killall.sh"), s.dataDir, s.runDir); err != nil {
		t.Errorf("ketch-killall.sh: %v", err)
	}
	// The node's processes are gone: nothing writes to the servers' output any more.
	for _, p := range s.started {
		p.Close()
	}
	var leftovers []string
	if mounts, _ := harness.MountsUnder(s.dataDir, s.runDir); len(mounts) > 0 {
		leftovers = append(leftovers, "mounts: "+strings.Join(mounts, ", "))
	}
	if procs, _ := harness.ProcessesMentioning(s.runDir); len(procs) > 0 {
		leftovers = append(leftovers, "processes: "+pids(procs))
	}
	for _, pattern := range []string{"/sys/fs/cgroup/*/kubepods*", "/sys/fs/cgroup/kubepods*", "/sys/fs/cgroup/*/ketch", "/sys/fs/cgroup/ketch"} {
		if cgroups, _ := filepath.Glob(pattern); len(cgroups) > 0 {
			leftovers = append(leftovers, "cgroups: "+strings.Join(cgroups, ", "))
		}
	}
	if links, _ := filepath.Glob("/var/log/containers/*"); len(links) > 0 {
		for _, l := range links {
			if target, _ := os.Readlink(l); strings.HasPrefix(target, s.dataDir) {
				leftovers = append(leftovers, "pod log link "+l)
			}
		}
	}
	for _, link := range []string{"cni0", "flannel.1"} {
		if _, err := net.InterfaceByName(link); err == nil {
			leftovers = append(leftovers, "link "+link)
		}
	}
	if out, err := exec.Command("iptables-save").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, ":KUBE-") || strings.HasPrefix(line, ":CNI-") || strings.HasPrefix(line, ":FLANNEL-") {
				leftovers = append(leftovers, "iptables chain "+strings.Fields(line)[0])
				break
			}
		}
	}
	if len(leftovers) > 0 {
		t.Errorf("host not clean after ketch-killall.sh: %s", strings.Join(leftovers, "; "))
	}
	if !t.Failed() || os.Getenv("KETCH_E2E_KEEP") == "" {
		os.RemoveAll(s.dataDir)
		os.RemoveAll(s.runDir)
	} else {
		t.Logf("kept %s and %s (KETCH_E2E_KEEP)", s.dataDir, s.runDir)
	}
}

// pids lists the processes' ids, for leftovers.
func pids(procs []harness.Proc) string {
	var ids []string
	for _, p := range procs {
		ids = append(ids, strconv.Itoa(p.PID))
	}
	return strings.Join(ids, ",")
}

// echoImage builds the tests' workload image from testdata/echo plus busybox-static (for
// shells, wget and the like), named name, as a docker-archive or gzipped OCI layout tarball.
func echoImage(t *testing.T, name string, oci bool) []byte {
	t.Helper()
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("the test image needs a static busybox (apt-get install busybox-static): %v", err)
	}
	if out, err := exec.Command("file", "-L", busybox).Output(); err == nil && strings.Contains(string(out), "dynamically linked") {
		t.Fatalf("%s is dynamically linked; the test image needs busybox-static", busybox)
	}
	echo := filepath.Join(t.TempDir(), "echo")
	if err := harness.BuildGo(context.Background(), testutil.RepoRoot(), "./internal/e2e/testdata/echo", echo); err != nil {
		t.Fatalf("building the echo server: %v", err)
	}
	files := []images.File{
		{Path: "/echo", Mode: 0o755, Source: echo},
		{Path: "/bin/busybox", Mode: 0o755, Source: busybox},
		{Path: "/tmp", Mode: fs.ModeDir | 0o1777},
	}
	for _, applet := range []string{"sh", "cat", "wget", "sleep", "hostname", "ls", "seq", "echo", "grep", "sort", "wc", "true", "test", "timeout"} {
		files = append(files, images.File{Path: "/bin/" + applet, Mode: fs.ModeSymlink | 0o777, Linkname: "busybox"})
	}
	layers := []images.Layer{{Files: files}}
	config := images.ImageConfig{}
	config.Config.Entrypoint = []string{"/echo"}
	config.Config.Env = []string{"PATH=/bin"}
	var tarball []byte
	if oci {
		tarball, err = images.BuildImage(name, layers, config)
	} else {
		tarball, err = images.BuildDockerArchive(name, layers, config)
	}
	if err != nil {
		t.Fatalf("building image %s: %v", name, err)
	}
	if !oci {
		return tarball
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarball)
	zw.Close()
	return gz.Bytes()
}

// eventually retries check until it returns nil or timeout passes, then fails with its error.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
