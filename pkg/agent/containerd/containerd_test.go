package containerd

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ketch-k8s/ketch/internal/testutil"
	"github.com/ketch-k8s/ketch/pkg/bundle"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/hostcheck"
	"github.com/ketch-k8s/ketch/pkg/images"
)

// TestMain, with childEnv set, is a separate containerd process (a whole ketch agent, as far as
// containerd is concerned) that the test kills to check that containers survive a crash.
func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		runChild(cfg)
	}
	os.Exit(m.Run())
}

const childEnv = "KETCH_TEST_CONTAINERD_CHILD"

// childConfig is what a child containerd process is started with.
type childConfig struct {
	Config
	LogPath string
}

// runChild runs containerd until the process is killed.
func runChild(cfgJSON string) {
	var cc childConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cc); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	f, err := os.OpenFile(cc.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	cc.Config.Log = f
	// The context is containerd's lifetime: never cancelled here; the test kills the process.
	if _, err := Start(context.Background(), cc.Config); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	select {} // until killed
}

// node is one test node's directories and host resources, and their cleanup.
type node struct {
	t            *testing.T
	res          resources // the host resources, named after this process
	dataDir      string
	runDir       string
	binDir       string
	bridge       string
	subnet       *net.IPNet
	cgroupParent string
	logPath      string
	chainsBefore map[string]bool
	netns        []string // the pods' network namespaces, as the CRI reported them
	self         string   // this test binary, which also runs as a separate containerd
	host         *hostcheck.Host
	pauseName    string // the sandbox image, localhost/ketch/pause:<tag>
	pauseTar     []byte // its OCI archive
}

func newNode(t *testing.T) *node {
	t.Helper()
	testutil.NeedsRoot(t, "runs containerd, runc, overlayfs mounts, network namespaces and a bridge")
	testutil.LockHost(t)
	b, err := bundle.Embedded()
	if errors.Is(err, bundle.ErrNotBuilt) {
		t.Skip("no runtime bundle embedded: run `make bundle` (make test does) for runc and the CNI plugins")
	}
	if err != nil {
		t.Fatal(err)
	}
	pauseName, pauseTar := pauseImage(t)
	host, err := hostcheck.Check("")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range host.Messages {
		t.Log("hostcheck: " + m)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Everything this test creates on the host is named after this process, so that nothing
	// of another developer's on this shared machine is touched, and so that what a killed run
	// left behind can be found and removed by the next one.
	res := resources{pid: os.Getpid()}
	n := &node{
		t:            t,
		res:          res,
		dataDir:      res.dataDir(),
		runDir:       res.runDir(),
		bridge:       res.bridge(),
		cgroupParent: res.cgroupParent(),
		chainsBefore: iptablesChains(t),
		self:         self,
		host:         host,
		pauseName:    pauseName,
		pauseTar:     pauseTar,
	}
	_, n.subnet, _ = net.ParseCIDR(fmt.Sprintf("10.88.%d.0/24", 100+rand.IntN(150)))
	n.logPath = filepath.Join(n.dataDir, "containerd.log")
	// The bundle first, for its runc, which removing a killed run's containers needs.
	bundleDir := t.TempDir()
	runcDir, err := b.Unpack(bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	removeStale(t, filepath.Join(runcDir, "runc"))
	for _, dir := range []string{n.runDir, n.dataDir} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(n.cleanup)
	n.binDir, err = b.Unpack(filepath.Join(n.dataDir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	n.writeCNIConfig()
	return n
}

// testPause is the pause image, made once per test process.
var testPause struct {
	once sync.Once
	name string
	tar  []byte
	err  error
}

// pauseImage returns the pause image the agent uses, images.PauseImage(). A test binary built
// without make has no embedded pause binary; then cmd/pause is built here, as pkg/images' own
// tests do (helpers_test.go there), and the image is made of it with images.PauseImageFrom, so
// the pods always run the real pause program.
func pauseImage(t *testing.T) (name string, tar []byte) {
	t.Helper()
	testPause.once.Do(func() {
		testPause.name, testPause.tar, testPause.err = images.PauseImage()
		if !errors.Is(testPause.err, images.ErrNoPauseBinary) {
			return
		}
		dir, err := os.MkdirTemp("", "ketch-pause-")
		if err != nil {
			testPause.err = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "pause")
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		cmd := exec.Command(gobin, "build", "-buildvcs=false", "-trimpath", "-ldflags", "-s -w -buildid=", "-o", out, "github.com/ketch-k8s/ketch/cmd/pause")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			testPause.err = fmt.Errorf("build cmd/pause: %w: %s", err, b)
			return
		}
		bin, err := os.ReadFile(out)
		if err != nil {
			testPause.err = err
			return
		}
		testPause.name, testPause.tar, testPause.err = images.PauseImageFrom(bin)
		t.Logf("no embedded pause binary: built cmd/pause for the pause image %s", testPause.name)
	})
	if testPause.err != nil {
		t.Fatalf("pause image: %v", testPause.err)
	}
	return testPause.name, testPause.tar
}

// config is the node's containerd Config; SandboxImage is the pause image (pauseImage).
func (n *node) config() Config {
	n.t.Helper()
	host := n.host
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() {
		logFile.Close()
		if n.t.Failed() || os.Getenv("KETCH_TEST_CONTAINERD_LOG") != "" {
			b, _ := os.ReadFile(n.logPath)
			n.t.Logf("containerd log:\n%s", b)
		}
	})
	return Config{
		Paths:               config.Paths{DataDir: n.dataDir, RunDir: n.runDir},
		BinDir:              n.binDir,
		SandboxImage:        n.pauseName,
		SystemdCgroup:       host.CgroupDriver == hostcheck.CgroupDriverSystemd,
		RestrictOOMScoreAdj: host.RestrictOOMScoreAdj,
		Log:                 logFile,
		LogLevel:            "info",
	}
}

// writeCNIConfig writes a bridge network (with host-local addresses and portmap, the plugins
// the node uses) on the test's own bridge and subnet. A loopback-only network is not enough:
// the CRI plugin requires an eth0 address for every pod that is not on the host network.
func (n *node) writeCNIConfig() {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "ketch-test",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": n.bridge, "isGateway": true, "ipMasq": false,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": filepath.Join(n.dataDir, "ipam"),
					"ranges":  [][]map[string]string{{{"subnet": n.subnet.String()}}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		n.t.Fatal(err)
	}
	dir := config.Paths{DataDir: n.dataDir}.CNIConfDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "10-test.conflist"), data, 0o600); err != nil {
		n.t.Fatal(err)
	}
}

// start starts containerd and fails the test with the tail of its log if it does not come up.
func (n *node) start(ctx context.Context) *Containerd {
	n.t.Helper()
	c, err := Start(ctx, n.config())
	if err != nil {
		n.t.Fatalf("Start: %v\n%s", err, n.logTail())
	}
	// The bundle's bin dir comes first on PATH, once however often containerd starts.
	path := filepath.SplitList(os.Getenv("PATH"))
	if len(path) == 0 || path[0] != c.cfg.BinDir || slices.Index(path[1:], c.cfg.BinDir) >= 0 {
		n.t.Errorf("PATH after Start is %q, want %s first and once", os.Getenv("PATH"), c.cfg.BinDir)
	}
	return c
}

// startChild starts containerd in a separate process running this test binary and returns
// once it serves; the caller kills it.
func (n *node) startChild(cfg Config) *exec.Cmd {
	n.t.Helper()
	cfg.Log = nil
	data, err := json.Marshal(childConfig{Config: cfg, LogPath: n.logPath})
	if err != nil {
		n.t.Fatal(err)
	}
	cmd := exec.Command(n.self)
	cmd.Env = append(os.Environ(), childEnv+"="+string(data))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		n.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		n.t.Fatalf("child containerd did not start: %q %v\n%s", line, err, n.logTail())
	}
	return cmd
}

func (n *node) logTail() string {
	b, _ := os.ReadFile(n.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return "containerd log (last lines):\n" + strings.Join(lines, "\n")
}

// testImageName names the test's busybox image, fully qualified as the CRI plugin looks it up.
const testImageName = "localhost/ketch-test/busybox:1"

// busyboxImage is a single-layer image of the host's static busybox, as an OCI archive named
// testImageName.
func busyboxImage(t *testing.T) []byte {
	t.Helper()
	const bb = "/bin/busybox"
	f, err := elf.Open(bb)
	if err != nil {
		t.Skipf("needs a static busybox at %s (apt-get install busybox-static): %v", bb, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Skipf("%s is dynamically linked; the test image needs busybox-static (apt-get install busybox-static)", bb)
		}
	}
	tar, err := images.BuildImage(testImageName,
		[]images.Layer{{Files: []images.File{{Path: bb, Mode: 0o755, Source: bb}}}},
		images.ImageConfig{Config: ocispec.ImageConfig{Cmd: []string{bb, "sleep", "3600"}}})
	if err != nil {
		t.Fatal(err)
	}
	return tar
}

// imageClient connects a containerd client to c, closed when the test ends.
func imageClient(t *testing.T, c *Containerd) *client.Client {
	t.Helper()
	cl, err := client.New(c.Address())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func criClient(t *testing.T, socket string) (runtimeapi.RuntimeServiceClient, runtimeapi.ImageServiceClient) {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
}

// TestRunPodAcrossRestart is the node's container runtime end to end: embedded containerd with
// the CRI plugin, the bundle's runc and CNI plugins, overlayfs, images made locally, a pod with
// a container, exec; then containerd stops while the pod runs, the container survives, and a
// new containerd reconnects to it.
func TestRunPodAcrossRestart(t *testing.T) {
	n := newNode(t)
	// This machine has Debian's containerd and runc on PATH; a user's host need not. Only the
	// bundle's may be found, or a lost reconnection would go unnoticed.
	t.Setenv("PATH", pathWithout(t, "containerd-shim-runc-v2", "runc"))
	testImage := busyboxImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	klogV := newKlogFlags().Lookup("v").Value.String()
	began := time.Now()
	c := n.start(ctx)
	stopped := false
	if v := newKlogFlags().Lookup("v").Value.String(); v != klogV {
		t.Errorf("klog's verbosity changed from %s to %s by Start", klogV, v)
	}
	defer func() {
		if !stopped {
			c.Stop()
		}
	}()
	t.Logf("containerd up in %v on %s", time.Since(began).Round(time.Millisecond), c.Address())
	if b, err := os.ReadFile(c.Paths().ConfigFile); err != nil || !bytes.Contains(b, []byte("restrict_oom_score_adj")) {
		t.Errorf("config file %s: %v", c.Paths().ConfigFile, err)
	}

	// The images as the agent loads them: the pause image pinned, once; then the test image.
	cl := imageClient(t, c)
	if imported, err := images.Ensure(ctx, cl, c.cfg.SandboxImage, bytes.NewReader(n.pauseTar), images.WithPinned()); err != nil || !imported {
		t.Fatalf("importing the pause image: imported %t, %v", imported, err)
	}
	if imported, err := images.Ensure(ctx, cl, c.cfg.SandboxImage, bytes.NewReader(n.pauseTar), images.WithPinned()); err != nil || imported {
		t.Fatalf("the pause image again (already there: a no-op): imported %t, %v", imported, err)
	}
	if names, err := images.Import(ctx, cl, bytes.NewReader(testImage)); err != nil || len(names) != 1 || names[0] != testImageName {
		t.Fatalf("importing the test image: %v, %v", names, err)
	}
	rt, is := criClient(t, c.Address())
	imgs, err := is.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	pinned := map[string]bool{}
	for _, img := range imgs.Images {
		for _, tag := range img.RepoTags {
			pinned[tag] = img.Pinned
		}
	}
	if p, ok := pinned[c.cfg.SandboxImage]; !ok || !p {
		t.Errorf("pause image %s: listed %t pinned %t (images %v)", c.cfg.SandboxImage, ok, p, pinned)
	}
	if p, ok := pinned[testImageName]; !ok || p {
		t.Errorf("test image %s: listed %t pinned %t (images %v)", testImageName, ok, p, pinned)
	}

	// The runtime reports ready once the CNI config is loaded.
	waitFor(t, ctx, "CRI runtime and network ready", func() error {
		st, err := rt.Status(ctx, &runtimeapi.StatusRequest{})
		if err != nil {
			return err
		}
		for _, c := range st.Status.Conditions {
			// Other conditions are warnings (cgroup v1 is deprecated, on this machine).
			if (c.Type == runtimeapi.RuntimeReady || c.Type == runtimeapi.NetworkReady) && !c.Status {
				return fmt.Errorf("%s: %s %s", c.Type, c.Reason, c.Message)
			}
		}
		return nil
	})

	sandboxConfig := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "test", Namespace: "default", Uid: fmt.Sprintf("uid-%d", os.Getpid())},
		Hostname:     "ketch-test",
		LogDirectory: filepath.Join(n.dataDir, "pods"),
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: n.cgroupParent,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD},
			},
		},
	}
	began = time.Now()
	pod, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sandboxConfig})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v\n%s", err, n.logTail())
	}
	t.Logf("pod sandbox %s running in %v", pod.PodSandboxId[:12], time.Since(began).Round(time.Millisecond))
	podStatus, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod.PodSandboxId})
	if err != nil {
		t.Fatal(err)
	}
	n.netns = append(n.netns, podNetns(t, ctx, rt, pod.PodSandboxId))
	podIP := net.ParseIP(podStatus.Status.GetNetwork().GetIp())
	if podIP == nil || !n.subnet.Contains(podIP) {
		t.Errorf("pod IP %q is not in the test subnet %s", podStatus.Status.GetNetwork().GetIp(), n.subnet)
	}

	ctr, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: pod.PodSandboxId,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "sleeper"},
			Image:    &runtimeapi.ImageSpec{Image: testImageName},
			LogPath:  "sleeper.log",
			Linux:    &runtimeapi.LinuxContainerConfig{},
		},
		SandboxConfig: sandboxConfig,
	})
	if err != nil {
		t.Fatalf("CreateContainer: %v\n%s", err, n.logTail())
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctr.ContainerId}); err != nil {
		t.Fatalf("StartContainer: %v\n%s", err, n.logTail())
	}
	checkExec(t, ctx, rt, ctr.ContainerId)
	// The pod reaches its own gateway through the bridge: the bridge and veth plugins worked.
	gw := make(net.IP, 4)
	copy(gw, n.subnet.IP.To4())
	gw[3] = 1
	if out, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: ctr.ContainerId, Cmd: []string{"/bin/busybox", "ping", "-c", "1", "-W", "5", gw.String()}, Timeout: 10}); err != nil || out.ExitCode != 0 {
		t.Errorf("ping %s from the pod: %v %s%s", gw, err, out.GetStdout(), out.GetStderr())
	}

	ctrPID := containerPID(t, ctx, rt, ctr.ContainerId)
	shims := n.shimPIDs()
	if len(shims) == 0 {
		t.Fatal("no shim process found")
	}
	for _, pid := range shims {
		t.Logf("shim pid %d: %s; %s", pid, cmdline(pid), memory(pid))
	}
	t.Logf("container pid %d", ctrPID)

	// survives checks that the container and its shim outlived containerd.
	survives := func(how string) {
		t.Helper()
		if _, err := os.Stat(c.Address()); how == "Stop" && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket %s still there after Stop: %v", c.Address(), err)
		}
		time.Sleep(500 * time.Millisecond)
		if !alive(ctrPID) {
			t.Fatalf("container process %d died with containerd (%s)", ctrPID, how)
		}
		for _, pid := range shims {
			if !alive(pid) {
				t.Fatalf("shim %d died with containerd (%s)", pid, how)
			}
		}
	}
	// reconnected checks that a new containerd on the same directories found the running pod
	// and container, and can exec in it.
	reconnected := func(socket string) {
		t.Helper()
		rt, _ := criClient(t, socket)
		list, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Containers) != 1 || list.Containers[0].Id != ctr.ContainerId || list.Containers[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Fatalf("after restart, containers: %v", list.Containers)
		}
		pods, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 1 || pods.Items[0].State != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Fatalf("after restart, pods: %v", pods.Items)
		}
		if pid := containerPID(t, ctx, rt, ctr.ContainerId); pid != ctrPID {
			t.Errorf("after restart the container's pid is %d, was %d", pid, ctrPID)
		}
		checkExec(t, ctx, rt, ctr.ContainerId)
	}

	// containerd stops (as when ketch shuts down); the container and its shim do not, and
	// containerd started again in this process reconnects.
	c.Stop()
	stopped = true
	survives("Stop")
	began = time.Now()
	c = n.start(ctx)
	stopped = false
	t.Logf("containerd restarted in this process in %v", time.Since(began).Round(time.Millisecond))
	reconnected(c.Address())

	// The same across processes and a crash: another process runs containerd on the same
	// directories and is SIGKILLed (as when ketch is killed or upgraded); containerd in this
	// process takes over again.
	c.Stop()
	stopped = true
	began = time.Now()
	child := n.startChild(n.config())
	t.Logf("containerd started in process %d in %v", child.Process.Pid, time.Since(began).Round(time.Millisecond))
	reconnected(c.Address())
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	survives("SIGKILL")
	c = n.start(ctx)
	stopped = false
	reconnected(c.Address())
	rt, _ = criClient(t, c.Address())

	// Remove everything through the CRI, as the kubelet would; the shim exits by itself and
	// the pod's network namespace goes.
	if _, err := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: ctr.ContainerId, Timeout: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: ctr.ContainerId}); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod.PodSandboxId}); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod.PodSandboxId}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "shims to exit", func() error {
		for _, pid := range shims {
			if alive(pid) {
				return fmt.Errorf("shim %d still running", pid)
			}
		}
		return nil
	})
	if alive(ctrPID) {
		t.Errorf("container process %d still running", ctrPID)
	}
	for _, ns := range n.netns {
		if _, err := os.Lstat(ns); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the pod's network namespace %s is still there: %v", ns, err)
		}
	}
	c.Stop()
	stopped = true
}

func checkExec(t *testing.T, ctx context.Context, rt runtimeapi.RuntimeServiceClient, id string) {
	t.Helper()
	out, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"/bin/busybox", "echo", "hi"}, Timeout: 10})
	if err != nil {
		t.Fatalf("ExecSync: %v", err)
	}
	if out.ExitCode != 0 || string(out.Stdout) != "hi\n" {
		t.Fatalf("ExecSync echo hi: exit %d stdout %q stderr %q", out.ExitCode, out.Stdout, out.Stderr)
	}
}

// containerPID reads the container's init pid from the CRI's verbose status.
func containerPID(t *testing.T, ctx context.Context, rt runtimeapi.RuntimeServiceClient, id string) int {
	t.Helper()
	st, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container state %v", st.Status.State)
	}
	var info struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil || info.Pid <= 0 {
		t.Fatalf("container pid from %q: %v", st.Info["info"], err)
	}
	return info.Pid
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// memory summarises a process' memory from smaps_rollup: resident, proportional (shared
// pages divided among their users) and private.
func memory(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	kb := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == "kB" {
			kb[strings.TrimSuffix(f[0], ":")], _ = strconv.Atoi(f[1])
		}
	}
	return fmt.Sprintf("RSS %d kB, PSS %d kB, private %d kB", kb["Rss"], kb["Pss"], kb["Private_Clean"]+kb["Private_Dirty"])
}

// shimPIDs lists this test's shim processes: those running the shim of this node's bundle.
func (n *node) shimPIDs() []int {
	shim := filepath.Join(n.binDir, ShimName)
	var pids []int
	for _, pid := range allPIDs() {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == shim && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// podNetns returns the path of a pod's network namespace from the CRI's verbose status.
func podNetns(t *testing.T, ctx context.Context, rt runtimeapi.RuntimeServiceClient, id string) string {
	t.Helper()
	st, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		RuntimeSpec struct {
			Linux struct {
				Namespaces []struct{ Type, Path string }
			}
		}
	}
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil {
		t.Fatal(err)
	}
	for _, ns := range info.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" && ns.Path != "" {
			return ns.Path
		}
	}
	t.Fatalf("no network namespace in the pod's spec: %s", st.Info["info"])
	return ""
}

// cleanup removes whatever the test left on the host, whether it passed or not, and checks
// that nothing of it is left.
func (n *node) cleanup() {
	runc := ""
	if n.binDir != "" {
		runc = filepath.Join(n.binDir, "runc")
	}
	n.res.remove(n.t.Logf, n.t.Errorf, runc, n.netns)
	n.cleanupIptables()
	if pids := n.shimPIDs(); len(pids) > 0 {
		n.t.Errorf("cleanup: shims still running: %v", pids)
	}
	for _, ns := range n.netns {
		if _, err := os.Lstat(ns); err == nil {
			n.t.Errorf("cleanup: network namespace %s left", ns)
		}
	}
}

// cleanupIptables deletes the CNI chains that appeared during the test, with the rules that
// jump to them. (The test network has no masquerading and no port mappings, so normally there
// are none.)
func (n *node) cleanupIptables() {
	added := map[string]bool{}
	for tc := range iptablesChains(n.t) {
		if _, chain, _ := strings.Cut(tc, "/"); !n.chainsBefore[tc] && strings.HasPrefix(chain, "CNI-") {
			added[tc] = true
		}
	}
	if len(added) == 0 {
		return
	}
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		n.t.Errorf("cleanup: iptables-save: %v", err)
		return
	}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "*") {
			table = line[1:]
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "-A" {
			continue
		}
		for i := 0; i+1 < len(f); i++ {
			if (f[i] == "-j" || f[i] == "-g") && added[table+"/"+f[i+1]] && !added[table+"/"+f[1]] {
				args := append([]string{"-t", table, "-D"}, f[1:]...)
				if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
					n.t.Errorf("cleanup: iptables %v: %v %s", args, err, out)
				}
			}
		}
	}
	for tc := range added {
		table, chain, _ := strings.Cut(tc, "/")
		exec.Command("iptables", "-t", table, "-F", chain).Run()
	}
	for tc := range added {
		table, chain, _ := strings.Cut(tc, "/")
		if out, err := exec.Command("iptables", "-t", table, "-X", chain).CombinedOutput(); err != nil {
			n.t.Errorf("cleanup: deleting chain %s: %v %s", tc, err, out)
		} else {
			n.t.Logf("cleanup: deleted iptables chain %s", tc)
		}
	}
}

// iptablesChains lists "table/chain" for every chain in the IPv4 tables.
func iptablesChains(t *testing.T) map[string]bool {
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	chains := map[string]bool{}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			chains[table+"/"+strings.Fields(line[1:])[0]] = true
		}
	}
	return chains
}

// pathWithout is a PATH with every program of the current one except the named ones: one
// directory of links, so that a test can run on a machine that has those programs installed
// as if it had not.
func pathWithout(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.IsDir() || slices.Contains(names, e.Name()) {
				continue
			}
			// The first of a name on PATH wins, as in a lookup.
			if err := os.Symlink(filepath.Join(d, e.Name()), filepath.Join(dir, e.Name())); err != nil && !os.IsExist(err) {
				t.Fatal(err)
			}
		}
	}
	return dir
}
