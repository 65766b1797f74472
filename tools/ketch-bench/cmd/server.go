package cmd

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/tools/ketch-bench/podstart"
	"github.com/ketch-k8s/ketch/tools/ketch-bench/sections"
)

// `ketch-bench server` measures what a user of `ketch server` sees: the binary's size, the time
// to a Ready node, the node's memory and how fast pods start, all on the real binary.

var serverCmd = &command{
	name:     "server",
	synopsis: "server --ketch-bin PATH [flags]",
	help: `server: measures ketch server as a user sees it: binary size, exec to node Ready (cold and
warm), idle memory of the whole node, and pod start-up latency. Runs as root, starts real
servers (one at a time; the host must not run another ketch node) and cleans up after them
with package/ketch-killall.sh.

  --ketch-bin PATH     ketch binary to benchmark (required)
  --out FILE           markdown file whose server section is replaced
  --quick              2 cold and 2 warm starts instead of 3 and 3, 30 s idle instead of 2 min
  --data-root DIR      parent of the scratch data dirs (default /var/tmp; never tmpfs)
  --killall PATH       ketch-killall.sh (default package/ketch-killall.sh, here or next to bin/)
`,
	run: runServer,
}

// serverOptions are the flags of the server bench, and of the addons bench, which starts the
// same nodes.
type serverOptions struct {
	ketchBin string
	out      string
	quick    bool
	dataRoot string
	killall  string
	args     []string // as given, for the report
}

func parseServerOptions(name string, args []string) (serverOptions, error) {
	o := serverOptions{args: args}
	flags := newFlags(name)
	flags.StringVar(&o.ketchBin, "ketch-bin", "", "")
	flags.StringVar(&o.out, "out", "", "")
	flags.BoolVar(&o.quick, "quick", false, "")
	flags.StringVar(&o.dataRoot, "data-root", "/var/tmp", "")
	flags.StringVar(&o.killall, "killall", "", "")
	return o, parseFlags(flags, args, &o.ketchBin)
}

// serverSizes are the run's counts and time limits.
type serverSizes struct {
	coldRuns, warmRuns int
	idle               time.Duration // after Ready, before the idle memory sample
	pods               int
	readyTimeout       time.Duration
	podsTimeout        time.Duration
	stopTimeout        time.Duration // SIGTERM to SIGKILL
}

func defaultServerSizes(quick bool) serverSizes {
	s := serverSizes{coldRuns: 3, warmRuns: 3, idle: 2 * time.Minute, pods: 50,
		readyTimeout: 3 * time.Minute, podsTimeout: 3 * time.Minute, stopTimeout: time.Minute}
	if quick {
		s.coldRuns, s.warmRuns, s.idle = 2, 2, 30*time.Second
	}
	return s
}

func runServer(args []string) error {
	return runNodeBench("server", args, func(ctx context.Context, b *nodeBench) (string, error) {
		sz := defaultServerSizes(b.opts.quick)
		res, err := serverRun(ctx, b.nodes, sz)
		if err != nil {
			return "", err
		}
		rep := sections.Server{Quick: b.opts.quick, Args: b.opts.args, KetchBin: b.opts.ketchBin, NodeName: benchNodeName,
			ColdRuns: sz.coldRuns, WarmRuns: sz.warmRuns, Idle: sz.idle, Machine: b.machine, Result: res,
			Elapsed: time.Since(b.started), Date: b.started}
		return rep.Section(), nil
	})
}

// serverRun starts the nodes: cold, then warm; the last warm node idles for the memory sample
// and then starts the pods.
func serverRun(ctx context.Context, nodes *serverNodes, sz serverSizes) (sections.ServerResult, error) {
	res := sections.ServerResult{Load: report.LoadAverage()}
	var err error
	nodes.logf("measuring %s", nodes.ketchBin)
	if res.BinSize, res.GzipSize, err = gzipSize(nodes.ketchBin); err != nil {
		return res, err
	}
	nodes.logf("binary %s, gzip -9 %s", report.Bytes(float64(res.BinSize)), report.Bytes(float64(res.GzipSize)))

	// Cold: every run on an empty data dir. The last one's dir seeds the warm runs.
	var dirs *nodeDirs
	for i := range sz.coldRuns {
		if dirs, err = nodes.newDirs(fmt.Sprintf("node-%d", i+1)); err != nil {
			return res, err
		}
		run, err := nodes.start(ctx, dirs, fmt.Sprintf("cold-%d", i+1))
		if err != nil {
			return res, err
		}
		if i == 0 {
			res.Notes = nodes.node.Notes()
		}
		if run.Stop, err = nodes.node.Stop(sz.stopTimeout); err != nil {
			return res, err
		}
		res.Cold = append(res.Cold, run)
		if i < sz.coldRuns-1 {
			if err := nodes.cleanDirs(dirs); err != nil {
				return res, err
			}
		}
	}

	// Warm: SIGTERM, then start again on the same dirs, as a restart would; the last warm
	// node stays up for the memory and pod measurements.
	for i := range sz.warmRuns {
		run, err := nodes.start(ctx, dirs, fmt.Sprintf("warm-%d", i+1))
		if err != nil {
			return res, err
		}
		if i < sz.warmRuns-1 {
			if run.Stop, err = nodes.node.Stop(sz.stopTimeout); err != nil {
				return res, err
			}
		}
		res.Warm = append(res.Warm, run)
	}

	node := nodes.node
	cfg := node.Config
	nodes.logf("idle for %s before the memory sample", sz.idle)
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-node.Done():
		return res, node.ExitError()
	case <-time.After(sz.idle):
	}
	if res.Idle, err = harness.ReadNodeMemory(node.PID(), cfg.Socket()); err != nil {
		return res, err
	}
	nodes.logf("idle PSS %s", describeMemory(res.Idle))

	res.Pods, res.WithPods, err = podstart.Run(ctx, podstart.Config{
		Ketch: harness.Ketch{Bin: cfg.Bin, Kubeconfig: cfg.Kubeconfig}, Socket: cfg.Socket(),
		ServerPID: node.PID(), ServerDone: node.Done(), Pods: sz.pods, Timeout: sz.podsTimeout, Logf: nodes.logf,
	})
	if err != nil {
		if node.Exited() {
			return res, node.ExitError()
		}
		return res, fmt.Errorf("pods: %w", err)
	}
	nodes.logf("PSS with %d pods %s", sz.pods, describeMemory(res.WithPods))
	if node.Exited() {
		return res, node.ExitError()
	}
	// Not counted as a stop time: this node has just deleted 50 pods.
	if _, err := node.Stop(sz.stopTimeout); err != nil {
		return res, err
	}
	return res, nodes.cleanDirs(dirs)
}

// describeMemory is a node's memory for the progress log.
func describeMemory(m harness.NodeMemory) string {
	return fmt.Sprintf("%s (server %s, %d shims %s, %d containers %s)", report.Bytes(float64(m.Total().PSS)),
		report.Bytes(float64(m.Ketch.PSS)), m.Shims.Procs, report.Bytes(float64(m.Shims.PSS)), m.Containers.Procs, report.Bytes(float64(m.Containers.PSS)))
}

// gzipSize returns the file's size and its size at gzip -9.
func gzipSize(path string) (size, gz int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var c countWriter
	zw, err := gzip.NewWriterLevel(&c, gzip.BestCompression)
	if err != nil {
		return 0, 0, err
	}
	if size, err = io.Copy(zw, f); err != nil {
		return 0, 0, fmt.Errorf("compress %s: %w", path, err)
	}
	if err := zw.Close(); err != nil {
		return 0, 0, err
	}
	return size, int64(c), nil
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}
