package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/tools/ketch-bench/agentstart"
	"github.com/ketch-k8s/ketch/tools/ketch-bench/podnet"
	"github.com/ketch-k8s/ketch/tools/ketch-bench/sections"
)

// `ketch-bench multinode` measures a cluster of a server and two agents made by
// scripts/ketch-cluster.sh (each node in its own network namespace on this machine): how long an
// agent takes from start to a Ready node and what an idle agent costs in memory (agentstart),
// and pod-to-pod TCP throughput and latency on the same node and across nodes (podnet), with
// flannel's vxlan and host-gw backends.

var multinodeCmd = &command{
	name:     "multinode",
	synopsis: "multinode --ketch-bin PATH [flags]",
	help: `multinode: a server and two agents made by scripts/ketch-cluster.sh, each in its own network
namespace: agent start to node Ready (cold join and warm restart), an idle agent's memory, and
pod-to-pod TCP throughput and latency on the same node and across nodes, with flannel vxlan and
host-gw (two clusters, one after the other). Runs as root, holds /tmp/ketch-host.lock and takes
every cluster down at the end.

  --ketch-bin PATH     ketch binary to benchmark (required)
  --out FILE           markdown file whose multinode section is replaced
  --quick              1 cold and 1 warm start, 15 s idle, one 3 s stream per path
  --script PATH        ketch-cluster.sh (default: ../scripts/ from ketch-killall.sh, else next to it)
  --killall PATH       ketch-killall.sh (default package/ketch-killall.sh, here or next to bin/)
`,
	run: runMultinode,
}

type multinodeOptions struct {
	ketchBin string
	out      string
	quick    bool
	script   string // scripts/ketch-cluster.sh
	killall  string // package/ketch-killall.sh
	args     []string
}

type multinodeSizes struct {
	coldRuns, warmRuns int
	idle               time.Duration // agent start → idle memory sample
	streamRuns         int
	streamSecs         int
	rrCount            int // round trips per request/response run (one run per stream run)
	readyTimeout       time.Duration
}

func defaultMultinodeSizes(quick bool) multinodeSizes {
	s := multinodeSizes{coldRuns: 3, warmRuns: 3, idle: time.Minute, streamRuns: 5, streamSecs: 6, rrCount: 10000, readyTimeout: 2 * time.Minute}
	if quick {
		s.coldRuns, s.warmRuns, s.idle, s.streamRuns, s.streamSecs, s.rrCount = 1, 1, 15*time.Second, 1, 3, 2000
	}
	return s
}

// The clusters: names of at most 4 characters (link names are limited to 15) and /24s the
// e2e tests do not use.
var multinodeClusters = []struct{ backend, name, subnet string }{
	{"vxlan", "kbv", "10.99.61"},
	{"host-gw", "kbh", "10.99.62"},
}

// The clusters' size, the agent whose start-up and memory are measured, and the node of the
// netbench server pod.
const (
	mnNodes      = 3
	mnAgent      = 3
	mnServerNode = 2
)

func parseMultinodeOptions(args []string) (multinodeOptions, error) {
	o := multinodeOptions{args: args}
	flags := newFlags("multinode")
	flags.StringVar(&o.ketchBin, "ketch-bin", "", "")
	flags.StringVar(&o.out, "out", "", "")
	flags.BoolVar(&o.quick, "quick", false, "")
	flags.StringVar(&o.script, "script", "", "")
	flags.StringVar(&o.killall, "killall", "", "")
	return o, parseFlags(flags, args, &o.ketchBin)
}

func runMultinode(args []string) (err error) {
	opts, err := parseMultinodeOptions(args)
	if err != nil {
		return err
	}
	st, err := startClusterBench(&opts.ketchBin, &opts.killall, &opts.script)
	if err != nil {
		return err
	}
	defer st.end()
	ctx, started, logf := st.ctx, st.started, st.logf

	work, err := os.MkdirTemp("", "ketch-bench-mn-")
	if err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	b := &multinodeBench{opts: opts, sizes: defaultMultinodeSizes(opts.quick), work: work, logf: logf}
	defer func() {
		// Whatever happened: every cluster down, and nothing of its nodes left on the host.
		if cerr := b.cleanup(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		os.RemoveAll(work)
	}()
	machine := report.DescribeMachine("/tmp", opts.ketchBin)

	res, err := b.run(ctx)
	if ctx.Err() != nil {
		return errors.New("interrupted; the clusters were taken down")
	}
	if err != nil {
		return err
	}
	if err := unchangedBinary(opts.ketchBin, st.binInfo); err != nil {
		return err
	}
	if err := b.cleanup(); err != nil {
		return err
	}
	sz := b.sizes
	rep := sections.Multinode{Quick: opts.quick, Args: opts.args, KetchBin: opts.ketchBin,
		ColdRuns: sz.coldRuns, WarmRuns: sz.warmRuns, Idle: sz.idle, StreamRuns: sz.streamRuns, StreamSecs: sz.streamSecs, RRCount: sz.rrCount,
		Nodes: mnNodes, Agent: mnAgent, NetServer: mnServerNode, Machine: machine, Result: res,
		Elapsed: time.Since(started), Date: started}
	for _, cl := range multinodeClusters {
		rep.Backends = append(rep.Backends, cl.backend)
	}
	return publish(opts.out, "multinode", rep.Section(), rep.Elapsed, logf)
}

// multinodeBench holds what cleanup needs: every cluster brought up.
type multinodeBench struct {
	opts     multinodeOptions
	sizes    multinodeSizes
	work     string // the image tarball and the netbench binary
	logf     func(string, ...any)
	clusters []*benchCluster
}

// run brings the clusters up one after the other: the agent is measured on the vxlan one, the
// pod network on both.
func (b *multinodeBench) run(ctx context.Context) (sections.MultinodeResult, error) {
	res := sections.MultinodeResult{Load: report.LoadAverage(), ClusterUps: map[string]time.Duration{}}
	// The repository: scripts/ketch-cluster.sh is in its scripts/.
	tarball, err := podnet.BuildImage(ctx, filepath.Dir(filepath.Dir(b.opts.script)), b.work, b.logf)
	if err != nil {
		return res, err
	}
	for _, cl := range multinodeClusters {
		c := &benchCluster{backend: cl.backend, Cluster: harness.Cluster{Script: b.opts.script, Bin: b.opts.ketchBin,
			Name: cl.name, Subnet: cl.subnet, Nodes: mnNodes}}
		b.clusters = append(b.clusters, c)
		if err := c.up(ctx, b.logf); err != nil {
			return res, err
		}
		res.ClusterUps[c.backend] = c.upTook
		if c.backend == "vxlan" {
			sz := b.sizes
			if res.Agent, err = agentstart.Run(ctx, agentstart.Config{Cluster: &c.Cluster, Client: c.client, Agent: mnAgent,
				Killall: b.opts.killall, ColdRuns: sz.coldRuns, WarmRuns: sz.warmRuns, Idle: sz.idle,
				ReadyTimeout: sz.readyTimeout, Logf: b.logf}); err != nil {
				return res, fmt.Errorf("%s cluster: %w", c.backend, err)
			}
		}
		nr, err := c.network(ctx, tarball, b.sizes, b.logf)
		if err != nil {
			return res, fmt.Errorf("%s cluster: %w", c.backend, err)
		}
		res.Nets = append(res.Nets, nr)
		if err := c.down(b.logf); err != nil {
			return res, err
		}
	}
	res.LoadEnd = report.LoadAverage()
	return res, nil
}

// cleanup takes every cluster down and checks that nothing of its nodes is left on the host.
func (b *multinodeBench) cleanup() error {
	var errs []error
	for _, c := range b.clusters {
		errs = append(errs, c.down(b.logf))
	}
	return errors.Join(errs...)
}

// benchCluster is one cluster of the bench, with one flannel backend.
type benchCluster struct {
	harness.Cluster
	backend      string
	client       kubernetes.Interface
	upTook       time.Duration
	isUp, isDown bool
}

func (c *benchCluster) up(ctx context.Context, logf func(string, ...any)) error {
	dir, err := os.MkdirTemp("/tmp", "kbm-") // short: socket paths below it are length-limited
	if err != nil {
		return fmt.Errorf("cluster dir: %w", err)
	}
	c.Dir = dir
	logf("%s: up --nodes %d --name %s --subnet %s (dir %s)", c.backend, c.Nodes, c.Name, c.Subnet, dir)
	t0 := time.Now()
	c.isUp = true // from here on, down is needed whatever happens
	if err := c.Up(ctx, "--flannel-backend", c.backend); err != nil {
		return err
	}
	c.upTook = time.Since(t0)
	logf("%s: %d nodes Ready after %s", c.backend, c.Nodes, report.Seconds(c.upTook))
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig())
	if err != nil {
		return fmt.Errorf("%s: %w", c.Kubeconfig(), err)
	}
	// The start-up measurements poll every 100 ms; the default client rate limit (5/s) would
	// hold them up.
	cfg.QPS, cfg.Burst = 100, 200
	c.client, err = kubernetes.NewForConfig(cfg)
	return err
}

// down takes the cluster down and checks that nothing of its nodes is left on the host. It
// runs on a fresh context: it must also work after an interrupt.
func (c *benchCluster) down(logf func(string, ...any)) error {
	if !c.isUp || c.isDown {
		return nil
	}
	logf("%s: down", c.backend)
	if err := c.Down(context.Background()); err != nil {
		return err
	}
	c.isDown = true
	var errs []error
	for i := 1; i <= c.Nodes; i++ {
		errs = append(errs, harness.HostClean(c.DataDir(i), c.RunDir(i)))
	}
	return errors.Join(errs...)
}

// network imports the netbench image into every node, as a user would on each machine, and
// measures the pod network between the server node and the agent.
func (c *benchCluster) network(ctx context.Context, tarball string, sz multinodeSizes, logf func(string, ...any)) (podnet.Result, error) {
	k := harness.Ketch{Bin: c.Bin, Kubeconfig: c.Kubeconfig()}
	for i := 1; i <= c.Nodes; i++ {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := k.ImportImage(ictx, c.Socket(i), tarball)
		cancel()
		if err != nil {
			return podnet.Result{}, fmt.Errorf("%s: %w", c.Node(i), err)
		}
	}
	return podnet.Streams(ctx, podnet.StreamConfig{Ketch: k, Client: c.client, Backend: c.backend,
		ServerNode: c.Node(mnServerNode), OtherNode: c.Node(mnAgent),
		Runs: sz.streamRuns, StreamSecs: sz.streamSecs, RRCount: sz.rrCount, Logf: logf})
}

// clusterScript is --script, or scripts/ketch-cluster.sh found from the killall script's place
// (package/ in a checkout, next to it in a release), as an absolute path to an executable.
func clusterScript(script, killall string) (string, error) {
	if script == "" {
		script = filepath.Join(filepath.Dir(killall), "..", "scripts", "ketch-cluster.sh")
		if _, err := os.Stat(script); err != nil {
			script = filepath.Join(filepath.Dir(killall), "ketch-cluster.sh")
		}
	}
	abs, err := filepath.Abs(script)
	if err != nil {
		return "", fmt.Errorf("--script: %w", err)
	}
	if st, err := os.Stat(abs); err != nil || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("--script: %s is not an executable file", abs)
	}
	return abs, nil
}
