package main

import (
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// `ketch-bench server` measures what a user of `ketch server` sees: the binary's size, the time
// to a Ready node, the node's memory and how fast pods start, all on the real binary.

const (
	benchNodeName = "ketch-bench"
	readyPhase    = "node Ready"
)

// serverPhases are the start-up lines `ketch server` prints, in order.
var serverPhases = []string{"datastore ready", "apiserver ready", "node registered", readyPhase}

type serverOptions struct {
	ketchBin string
	out      string
	quick    bool
	dataRoot string
	killall  string
	args     []string // as given, for the report
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

func parseServerOptions(args []string) (serverOptions, error) {
	o := serverOptions{args: args}
	flags := flag.NewFlagSet("server", flag.ContinueOnError)
	flags.Usage = func() { fmt.Fprint(flags.Output(), usageText) }
	flags.StringVar(&o.ketchBin, "ketch-bin", "", "")
	flags.StringVar(&o.out, "out", "", "")
	flags.BoolVar(&o.quick, "quick", false, "")
	flags.StringVar(&o.dataRoot, "data-root", "/var/tmp", "")
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

// startRun is one start of `ketch server`, from exec to node Ready.
type startRun struct {
	label  string
	phases []phaseTime
	stop   time.Duration // SIGTERM to exit, when the run was stopped cleanly
}

// phaseTime is one start-up line: when the bench saw it, counted from exec, and the time the
// server printed, counted from its own start (after the Go runtime and flag parsing).
type phaseTime struct {
	name              string
	observed, printed time.Duration
}

func (r startRun) phase(name string) (phaseTime, bool) {
	for _, p := range r.phases {
		if p.name == name {
			return p, true
		}
	}
	return phaseTime{}, false
}

// memSample is the PSS of one node's processes, split by role.
type memSample struct {
	server, shims, containers pssGroup
}

func (m memSample) total() pssGroup { return m.server.plus(m.shims).plus(m.containers) }

// pssGroup is the summed PSS of some processes, and its anonymous part.
type pssGroup struct {
	pss, anon uint64
	procs     int
}

func (g pssGroup) plus(o pssGroup) pssGroup {
	return pssGroup{pss: g.pss + o.pss, anon: g.anon + o.anon, procs: g.procs + o.procs}
}

func (m memSample) String() string {
	return fmt.Sprintf("%s (server %s, %d shims %s, %d containers %s)", fmtBytes(float64(m.total().pss)),
		fmtBytes(float64(m.server.pss)), m.shims.procs, fmtBytes(float64(m.shims.pss)), m.containers.procs, fmtBytes(float64(m.containers.pss)))
}

type podStats struct {
	latencies   []time.Duration // create call → watch sees Running, per pod
	allRunning  time.Duration   // first create call → last pod Running
	deleteTaken time.Duration   // namespace delete → namespace gone
	image       string
	cpu         cpuUse // from just before the creates to all Running
}

type serverResult struct {
	binSize, gzipSize int64
	cold, warm        []startRun
	idle, withPods    memSample
	pods              podStats
	notes             []string // lines the server printed besides its phases
	load              string   // the host's load average before the run
}

func runServerBench(args []string) (err error) {
	opts, err := parseServerOptions(args)
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
	unlock, err := claimHost(ctx, logf)
	if err != nil {
		return err
	}
	defer unlock()

	root, err := makeDataRoot(opts.dataRoot)
	if err != nil {
		return err
	}
	b := &serverBench{opts: opts, sizes: defaultServerSizes(opts.quick), root: root, logf: logf}
	defer func() {
		// Whatever happened: stop the server, clean up after every node, and check the host.
		if cerr := b.cleanup(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if err == nil {
			os.RemoveAll(root)
		} else {
			logf("kept %s (server output and logs)", root)
		}
	}()
	machine := collectMachineInfo(root, opts.ketchBin)

	res, err := b.run(ctx)
	if ctx.Err() != nil {
		return errors.New("interrupted; the server was stopped and the host cleaned up")
	}
	if err != nil {
		return err
	}
	if err := unchangedBinary(opts.ketchBin, binInfo); err != nil {
		return err
	}
	rep := serverReport{opts: opts, sizes: b.sizes, machine: machine, res: res, elapsed: time.Since(started), date: started}
	return publish(opts.out, serverBeginMarker, serverEndMarker, rep.section(), rep.elapsed, logf)
}

// serverBench holds the state cleanup needs: the running node and every dir pair used.
type serverBench struct {
	opts  serverOptions
	sizes serverSizes
	root  string
	logf  func(string, ...any)
	node  *ketchNode  // running or last started
	dirs  []*nodeDirs // every node's dirs, cleaned or not
	pipes []io.Closer // server output pipes, closed at the end
}

type nodeDirs struct {
	data, run string
	cleaned   bool
}

func (b *serverBench) run(ctx context.Context) (serverResult, error) {
	res := serverResult{load: loadAverage()}
	var err error
	b.logf("measuring %s", b.opts.ketchBin)
	if res.binSize, res.gzipSize, err = gzipSize(b.opts.ketchBin); err != nil {
		return res, err
	}
	b.logf("binary %s, gzip -9 %s", fmtBytes(float64(res.binSize)), fmtBytes(float64(res.gzipSize)))

	// Cold: every run on an empty data dir. The last one's dir seeds the warm runs.
	var dirs *nodeDirs
	for i := range b.sizes.coldRuns {
		if dirs, err = b.newDirs(fmt.Sprintf("node-%d", i+1)); err != nil {
			return res, err
		}
		run, err := b.start(ctx, dirs, fmt.Sprintf("cold-%d", i+1))
		if err != nil {
			return res, err
		}
		if i == 0 {
			res.notes = b.node.notes()
		}
		if run.stop, err = b.node.stop(b.sizes.stopTimeout); err != nil {
			return res, err
		}
		res.cold = append(res.cold, run)
		if i < b.sizes.coldRuns-1 {
			if err := b.cleanDirs(dirs); err != nil {
				return res, err
			}
		}
	}

	// Warm: SIGTERM, then start again on the same dirs, as a restart would; the last warm
	// node stays up for the memory and pod measurements.
	for i := range b.sizes.warmRuns {
		run, err := b.start(ctx, dirs, fmt.Sprintf("warm-%d", i+1))
		if err != nil {
			return res, err
		}
		if i < b.sizes.warmRuns-1 {
			if run.stop, err = b.node.stop(b.sizes.stopTimeout); err != nil {
				return res, err
			}
		}
		res.warm = append(res.warm, run)
	}

	b.logf("idle for %s before the memory sample", b.sizes.idle)
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-b.node.done:
		return res, b.node.exitError()
	case <-time.After(b.sizes.idle):
	}
	if res.idle, err = nodeMemory(b.node.pid(), dirs.socket()); err != nil {
		return res, err
	}
	b.logf("idle PSS %s", res.idle)

	res.pods, res.withPods, err = b.podPhase(ctx, dirs)
	if err != nil {
		return res, err
	}
	if b.node.exited() {
		return res, b.node.exitError()
	}
	// Not counted as a stop time: this node has just deleted 50 pods.
	if _, err := b.node.stop(b.sizes.stopTimeout); err != nil {
		return res, err
	}
	return res, b.cleanDirs(dirs)
}

// newDirs makes a data dir on the data root and a run dir with a short path: containerd's shim
// sockets live under the run dir and unix socket paths are limited to 108 bytes.
func (b *serverBench) newDirs(name string) (*nodeDirs, error) {
	data := filepath.Join(b.root, name)
	if err := os.Mkdir(data, 0o700); err != nil {
		return nil, err
	}
	run, err := os.MkdirTemp("/tmp", "kb-run-")
	if err != nil {
		return nil, err
	}
	d := &nodeDirs{data: data, run: run}
	b.dirs = append(b.dirs, d)
	return d, nil
}

func (d *nodeDirs) socket() string { return filepath.Join(d.run, "containerd", "containerd.sock") }

func (b *serverBench) start(ctx context.Context, dirs *nodeDirs, label string) (startRun, error) {
	n, err := startNode(b.opts.ketchBin, dirs, filepath.Join(b.root, label+".out"))
	if err != nil {
		return startRun{}, err
	}
	b.node = n
	b.pipes = append(b.pipes, n.pipe)
	if err := n.waitReady(ctx, b.sizes.readyTimeout); err != nil {
		return startRun{}, fmt.Errorf("%s: %w", label, err)
	}
	run := startRun{label: label, phases: n.phaseTimes()}
	var parts []string
	for _, p := range run.phases {
		parts = append(parts, fmt.Sprintf("%s %.2fs", p.name, p.observed.Seconds()))
	}
	b.logf("%s: %s (pid %d)", label, strings.Join(parts, ", "), n.pid())
	return run, nil
}

// cleanDirs runs ketch-killall.sh for one node's dirs, checks that nothing of the node is left
// on the host and removes its data dir.
func (b *serverBench) cleanDirs(d *nodeDirs) error {
	if d.cleaned {
		return nil
	}
	cmd := exec.Command(b.opts.killall)
	cmd.Env = append(os.Environ(), "KETCH_DATA_DIR="+d.data, "KETCH_RUN_DIR="+d.run)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", b.opts.killall, err, out)
	}
	if err := hostClean(d); err != nil {
		return err
	}
	d.cleaned = true
	return errors.Join(os.RemoveAll(d.data), os.RemoveAll(d.run))
}

func (b *serverBench) cleanup() error {
	var errs []error
	if b.node != nil && !b.node.exited() {
		if _, err := b.node.stop(b.sizes.stopTimeout); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range b.dirs {
		if err := b.cleanDirs(d); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range b.pipes {
		p.Close()
	}
	return errors.Join(errs...)
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

// findKillall locates scripts/ketch-killall.sh: as given, else in the working directory (the
// repository, under go run or make), else next to the binary's directory (bin/../scripts).
func findKillall(given, ketchBin string) (string, error) {
	candidates := []string{given}
	if given == "" {
		candidates = []string{filepath.Join("scripts", "ketch-killall.sh"),
			filepath.Join(filepath.Dir(filepath.Dir(ketchBin)), "scripts", "ketch-killall.sh")}
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return filepath.Abs(c)
		}
	}
	return "", fmt.Errorf("scripts/ketch-killall.sh not found (tried %s); run from the repository or pass --killall", strings.Join(candidates, ", "))
}
