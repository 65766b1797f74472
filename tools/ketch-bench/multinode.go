package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ketch-k8s/ketch/internal/testutil"
)

// `ketch-bench multinode` measures a cluster of a server and two agents made by
// scripts/ketch-cluster.sh (each node in its own network namespace on this machine): how long an
// agent takes from start to a Ready node, what an idle agent costs in memory, and pod-to-pod
// TCP throughput and latency on the same node and across nodes, with flannel's vxlan and
// host-gw backends.

type mnOptions struct {
	ketchBin string
	out      string
	quick    bool
	script   string // scripts/ketch-cluster.sh
	killall  string // scripts/ketch-killall.sh
	args     []string
}

type mnSizes struct {
	coldRuns, warmRuns int
	idle               time.Duration // agent start → idle memory sample
	streamRuns         int
	streamSecs         int
	rrCount            int // round trips per request/response run (one run per stream run)
	readyTimeout       time.Duration
}

func defaultMNSizes(quick bool) mnSizes {
	s := mnSizes{coldRuns: 3, warmRuns: 3, idle: time.Minute, streamRuns: 5, streamSecs: 6, rrCount: 10000, readyTimeout: 2 * time.Minute}
	if quick {
		s.coldRuns, s.warmRuns, s.idle, s.streamRuns, s.streamSecs, s.rrCount = 1, 1, 15*time.Second, 1, 3, 2000
	}
	return s
}

// The clusters: names of at most 4 characters (link names are limited to 15) and /24s the
// e2e tests do not use.
var mnBackends = []struct{ backend, name, subnet string }{
	{"vxlan", "kbv", "10.99.61"},
	{"host-gw", "kbh", "10.99.62"},
}

// The agent whose start-up and memory are measured, and the nodes of the network test.
const (
	mnAgent      = 3
	mnServerNode = 2
)

func parseMNOptions(args []string) (mnOptions, error) {
	o := mnOptions{args: args}
	flags := flag.NewFlagSet("multinode", flag.ContinueOnError)
	flags.Usage = func() { fmt.Fprint(flags.Output(), usageText) }
	flags.StringVar(&o.ketchBin, "ketch-bin", "", "")
	flags.StringVar(&o.out, "out", "", "")
	flags.BoolVar(&o.quick, "quick", false, "")
	flags.StringVar(&o.script, "script", "", "")
	flags.StringVar(&o.killall, "killall", "", "")
	if err := flags.Parse(args); err != nil {
		return o, err
	}
	if flags.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", flags.Args())
	}
	if o.ketchBin == "" {
		return o, fmt.Errorf("--ketch-bin is required")
	}
	return o, nil
}

func runMultinodeBench(args []string) (err error) {
	opts, err := parseMNOptions(args)
	if err != nil {
		return err
	}
	binInfo, err := checkNodeBench(&opts.ketchBin, &opts.killall)
	if err != nil {
		return err
	}
	if opts.script == "" {
		opts.script = filepath.Join(filepath.Dir(opts.killall), "ketch-cluster.sh")
	}
	if opts.script, err = filepath.Abs(opts.script); err != nil {
		return err
	}
	if st, err := os.Stat(opts.script); err != nil || st.Mode()&0o111 == 0 {
		return fmt.Errorf("--script: %s is not an executable file", opts.script)
	}

	ctx, stop := interruptible()
	defer stop()
	started := time.Now()
	logf := progressLog(started)

	unlock, err := lockHost(ctx, logf)
	if err != nil {
		return err
	}
	defer unlock()

	work, err := os.MkdirTemp("", "ketch-bench-mn-")
	if err != nil {
		return err
	}
	b := &mnBench{opts: opts, sizes: defaultMNSizes(opts.quick), work: work, logf: logf}
	defer func() {
		// Whatever happened: every cluster down, and nothing of its nodes left on the host.
		if cerr := b.cleanup(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		os.RemoveAll(work)
	}()
	machine := collectMachineInfo("/tmp", opts.ketchBin)

	res, err := b.run(ctx)
	if ctx.Err() != nil {
		return errors.New("interrupted; the clusters were taken down")
	}
	if err != nil {
		return err
	}
	if err := unchangedBinary(opts.ketchBin, binInfo); err != nil {
		return err
	}
	if err := b.cleanup(); err != nil {
		return err
	}
	rep := mnReport{opts: opts, sizes: b.sizes, machine: machine, res: res, elapsed: time.Since(started), date: started}
	return publish(opts.out, mnBeginMarker, mnEndMarker, rep.section(), rep.elapsed, logf)
}

// lockHost takes internal/testutil's host lock, which every test that runs ketch nodes on this
// machine holds, and keeps it until the returned function is called.
func lockHost(ctx context.Context, logf func(string, ...any)) (func(), error) {
	f, err := os.OpenFile(testutil.HostLock, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	for waited := false; ; waited = true {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", testutil.HostLock, err)
		}
		if !waited {
			logf("waiting for %s: another test or bench runs ketch nodes", testutil.HostLock)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return func() { f.Close() }, nil
}

type mnBench struct {
	opts     mnOptions
	sizes    mnSizes
	work     string // the image tarball and the netbench binary
	logf     func(string, ...any)
	clusters []*mnCluster
}

type mnResult struct {
	load        string // 1-minute load average before the run
	loadEnd     string // and after it
	cold, warm  []agentStart
	idle        agentMemory
	nets        []netResult
	imageSize   int64
	clusterUps  map[string]time.Duration // backend → `up --wait`
	agentOutput []string                 // the agent's other `ketch:` lines
}

func (b *mnBench) run(ctx context.Context) (mnResult, error) {
	res := mnResult{load: loadAverage(), clusterUps: map[string]time.Duration{}}
	// The repository: scripts/ketch-cluster.sh is in its scripts/.
	tarball, err := buildNetbenchImage(ctx, filepath.Dir(filepath.Dir(b.opts.script)), b.work, b.logf)
	if err != nil {
		return res, err
	}
	if st, err := os.Stat(tarball); err == nil {
		res.imageSize = st.Size()
	}
	for _, be := range mnBackends {
		c := &mnCluster{b: b, backend: be.backend, name: be.name, subnet: be.subnet}
		b.clusters = append(b.clusters, c)
		if err := c.up(ctx); err != nil {
			return res, err
		}
		res.clusterUps[c.backend] = c.upTook
		if be.backend == "vxlan" {
			if err := c.agentPhase(ctx, &res); err != nil {
				return res, fmt.Errorf("%s cluster: %w", c.backend, err)
			}
		}
		nr, err := c.networkPhase(ctx, tarball)
		if err != nil {
			return res, fmt.Errorf("%s cluster: %w", c.backend, err)
		}
		res.nets = append(res.nets, nr)
		if err := c.down(); err != nil {
			return res, err
		}
	}
	res.loadEnd = loadAverage()
	return res, nil
}

func (b *mnBench) cleanup() error {
	var errs []error
	for _, c := range b.clusters {
		errs = append(errs, c.down())
	}
	return errors.Join(errs...)
}

// mnCluster is one cluster of scripts/ketch-cluster.sh.
type mnCluster struct {
	b                     *mnBench
	backend, name, subnet string
	dir                   string
	client                kubernetes.Interface
	upTook                time.Duration
	isUp, isDown          bool
}

const mnNodes = 3

func (c *mnCluster) node(i int) string    { return fmt.Sprintf("%s-%d", c.name, i) }
func (c *mnCluster) runDir(i int) string  { return "/run/ketch-" + c.node(i) }
func (c *mnCluster) nodeDir(i int) string { return filepath.Join(c.dir, c.node(i)) }
func (c *mnCluster) dataDir(i int) string { return filepath.Join(c.nodeDir(i), "data") }
func (c *mnCluster) socket(i int) string {
	return filepath.Join(c.runDir(i), "containerd", "containerd.sock")
}
func (c *mnCluster) dirs(i int) *nodeDirs { return &nodeDirs{data: c.dataDir(i), run: c.runDir(i)} }

// script runs scripts/ketch-cluster.sh in its own process group (a terminal's Ctrl-C reaches
// only the bench, which then takes the cluster down in order).
func (c *mnCluster) script(ctx context.Context, timeout time.Duration, env []string, args ...string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, c.b.opts.script, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ketch-cluster.sh %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (c *mnCluster) up(ctx context.Context) error {
	dir, err := os.MkdirTemp("/tmp", "kbm-") // short: socket paths below it are length-limited
	if err != nil {
		return err
	}
	c.dir = dir
	c.b.logf("%s: up --nodes %d --name %s --subnet %s (dir %s)", c.backend, mnNodes, c.name, c.subnet, dir)
	t0 := time.Now()
	c.isUp = true // from here on, down is needed whatever happens
	if _, err := c.script(ctx, 5*time.Minute, nil, "up", "--dir", dir, "--nodes", fmt.Sprint(mnNodes), "--name", c.name,
		"--subnet", c.subnet, "--ketch", c.b.opts.ketchBin, "--wait", "--timeout", "240", "--", "--flannel-backend", c.backend); err != nil {
		return err
	}
	c.upTook = time.Since(t0)
	c.b.logf("%s: 3 nodes Ready after %s", c.backend, fmtSeconds(c.upTook))
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig-host"))
	if err != nil {
		return err
	}
	// The start-up measurements poll every 100 ms; the default client rate limit (5/s) would
	// hold them up.
	cfg.QPS, cfg.Burst = 100, 200
	c.client, err = kubernetes.NewForConfig(cfg)
	return err
}

// down takes the cluster down and checks that nothing of its nodes is left on the host. It
// runs on a fresh context: it must also work after an interrupt.
func (c *mnCluster) down() error {
	if !c.isUp || c.isDown {
		return nil
	}
	c.b.logf("%s: down", c.backend)
	if _, err := c.script(context.Background(), 3*time.Minute, nil, "down", "--dir", c.dir); err != nil {
		return err
	}
	c.isDown = true
	var errs []error
	for i := 1; i <= mnNodes; i++ {
		errs = append(errs, hostClean(c.dirs(i)))
	}
	return errors.Join(errs...)
}

func (c *mnCluster) kubectl(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	return runKubectl(ctx, c.b.opts.ketchBin, filepath.Join(c.dir, "kubeconfig-host"), timeout, args...)
}

// runKubectl runs `ketch kubectl` against the cluster of kubeconfig and returns its stdout.
func runKubectl(ctx context.Context, ketchBin, kubeconfig string, timeout time.Duration, args ...string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stdout, stderr strings.Builder
	cmd := exec.CommandContext(cctx, ketchBin, append([]string{"kubectl", "--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("ketch kubectl %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// deleteNode deletes a Node and waits until it is gone.
func (c *mnCluster) deleteNode(ctx context.Context, name string) error {
	if err := c.client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete node %s: %w", name, err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s not gone a minute after its deletion (%v)", name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
