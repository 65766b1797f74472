package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/tools/ketch-bench/sections"
)

// benchNodeName is the node name of every `ketch server` the server and addons benches start.
const benchNodeName = "ketch-bench"

// serverNodes starts the `ketch server` nodes of the server and addons benches, one at a time,
// and cleans up after each: it holds what cleanup needs, the running node and every dir pair
// used.
type serverNodes struct {
	ketchBin     string
	killall      string
	root         string        // the data root
	readyTimeout time.Duration // exec → node Ready
	stopTimeout  time.Duration // SIGTERM → SIGKILL
	logf         func(string, ...any)
	node         *harness.Server   // running or last started
	dirs         []*nodeDirs       // every node's dirs, cleaned or not
	started      []*harness.Server // every node started, whose output pipes close at the end
}

type nodeDirs struct {
	data, run string
	cleaned   bool
}

// newDirs makes a data dir on the data root and a run dir with a short path: containerd's shim
// sockets live under the run dir and unix socket paths are limited to 108 bytes.
func (s *serverNodes) newDirs(name string) (*nodeDirs, error) {
	data := filepath.Join(s.root, name)
	if err := os.Mkdir(data, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	run, err := os.MkdirTemp("/tmp", "kb-run-")
	if err != nil {
		return nil, fmt.Errorf("run dir: %w", err)
	}
	d := &nodeDirs{data: data, run: run}
	s.dirs = append(s.dirs, d)
	return d, nil
}

// config is the command line of a node on dirs, its output in the data root's label.out.
func (s *serverNodes) config(dirs *nodeDirs, label string) harness.ServerConfig {
	return harness.ServerConfig{Bin: s.ketchBin, DataDir: dirs.data, RunDir: dirs.run,
		Kubeconfig: filepath.Join(dirs.data, "admin.yaml"), Args: []string{"--node-name", benchNodeName},
		Output: filepath.Join(s.root, label+".out")}
}

// start starts a node on dirs and waits until it is Ready.
func (s *serverNodes) start(ctx context.Context, dirs *nodeDirs, label string) (sections.StartRun, error) {
	n, err := harness.StartServer(s.config(dirs, label))
	if err != nil {
		return sections.StartRun{}, fmt.Errorf("%s: %w", label, err)
	}
	s.node = n
	s.started = append(s.started, n)
	rctx, cancel := context.WithTimeout(ctx, s.readyTimeout)
	defer cancel()
	if err := n.WaitReady(rctx); err != nil {
		if ctx.Err() != nil {
			return sections.StartRun{}, ctx.Err()
		}
		return sections.StartRun{}, fmt.Errorf("%s: %w", label, err)
	}
	run := sections.StartRun{Label: label, Phases: n.Phases()}
	var parts []string
	for _, p := range run.Phases {
		parts = append(parts, fmt.Sprintf("%s %.2fs", p.Name, p.Observed.Seconds()))
	}
	s.logf("%s: %s (pid %d)", label, strings.Join(parts, ", "), n.PID())
	return run, nil
}

// cleanDirs runs ketch-killall.sh for one node's dirs, checks that nothing of the node is left
// on the host and removes its dirs.
func (s *serverNodes) cleanDirs(d *nodeDirs) error {
	if d.cleaned {
		return nil
	}
	// A fresh context: this also runs after an interrupt.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := harness.Killall(ctx, s.killall, d.data, d.run); err != nil {
		return err
	}
	if err := harness.HostClean(d.data, d.run); err != nil {
		return err
	}
	d.cleaned = true
	return errors.Join(os.RemoveAll(d.data), os.RemoveAll(d.run))
}

// cleanup stops the running node, if any, and cleans up after every node.
func (s *serverNodes) cleanup() error {
	var errs []error
	if s.node != nil && !s.node.Exited() {
		if _, err := s.node.Stop(s.stopTimeout); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range s.dirs {
		if err := s.cleanDirs(d); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range s.started {
		n.Close()
	}
	return errors.Join(errs...)
}

// nodeBench is what the server and addons benches share around their measurements.
type nodeBench struct {
	opts    serverOptions
	nodes   *serverNodes
	logf    func(string, ...any)
	started time.Time
	machine report.Machine
	// cleanup runs when the bench ends, whatever happened: it stops the node and cleans up after
	// every node (a bench may add to it).
	cleanup func() error
}

// runNodeBench checks the binary and killall, claims the host, makes the data root and the
// nodes, and runs measure. It publishes the section measure returns as the markdown section
// name, and cleans up whatever happened; the data root is kept for a look when the bench failed.
func runNodeBench(name string, args []string, measure func(ctx context.Context, b *nodeBench) (section string, err error)) (err error) {
	opts, err := parseServerOptions(name, args)
	if err != nil {
		return err
	}
	binInfo, err := checkNodeBench(&opts.ketchBin, &opts.killall)
	if err != nil {
		return err
	}
	ctx, stop := interruptible()
	defer stop()
	started := time.Now()
	logf := progressLog(started)
	lock, err := claimHost(ctx, logf)
	if err != nil {
		return err
	}
	defer lock.Release()
	root, err := makeDataRoot(opts.dataRoot)
	if err != nil {
		return err
	}
	sz := defaultServerSizes(opts.quick)
	b := &nodeBench{opts: opts, logf: logf, started: started, nodes: &serverNodes{ketchBin: opts.ketchBin, killall: opts.killall,
		root: root, readyTimeout: sz.readyTimeout, stopTimeout: sz.stopTimeout, logf: logf}}
	b.cleanup = b.nodes.cleanup
	defer func() {
		if cerr := b.cleanup(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if err == nil {
			os.RemoveAll(root)
		} else {
			logf("kept %s (server output and logs)", root)
		}
	}()
	b.machine = report.DescribeMachine(root, opts.ketchBin)

	section, err := measure(ctx, b)
	if ctx.Err() != nil {
		return errors.New("interrupted; the server was stopped and the host cleaned up")
	}
	if err != nil {
		return err
	}
	if err := unchangedBinary(opts.ketchBin, binInfo); err != nil {
		return err
	}
	return publish(opts.out, name, section, time.Since(started), logf)
}
