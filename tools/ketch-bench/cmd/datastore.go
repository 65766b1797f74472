package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/bench/stats"
	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/tools/ketch-bench/kvload"
	"github.com/ketch-k8s/ketch/tools/ketch-bench/sections"
)

// `ketch-bench datastore` runs one workload (kvload) against ketch's datastore and against a
// real, embedded etcd, side by side.

var datastoreCmd = &command{
	name:     "datastore",
	synopsis: "datastore --ketch-bin PATH [flags]",
	help: `datastore: benchmarks ketch's datastore against embedded etcd with the same workload.

  --ketch-bin PATH     ketch binary to benchmark (required)
  --out FILE           markdown file whose datastore section is replaced
  --targets LIST       comma-separated targets to run (default "ketch,etcd")
  --quick              much smaller counts, for a smoke run
  --data-root DIR      parent of the scratch data dir (default /var/tmp; never tmpfs)
`,
	run: runDatastore,
}

type datastoreOptions struct {
	ketchBin string
	out      string
	targets  []string
	quick    bool
	dataRoot string
	args     []string // as given, for the report
}

func parseDatastoreOptions(args []string) (datastoreOptions, error) {
	o := datastoreOptions{args: args}
	flags := newFlags("datastore")
	flags.StringVar(&o.ketchBin, "ketch-bin", "", "")
	flags.StringVar(&o.out, "out", "", "")
	targets := flags.String("targets", "ketch,etcd", "")
	flags.BoolVar(&o.quick, "quick", false, "")
	flags.StringVar(&o.dataRoot, "data-root", "/var/tmp", "")
	if err := parseFlags(flags, args, &o.ketchBin); err != nil {
		return o, err
	}
	for _, t := range strings.Split(*targets, ",") {
		t = strings.TrimSpace(t)
		if t != "ketch" && t != "etcd" {
			return o, fmt.Errorf("--targets: unknown target %q (want ketch and/or etcd)", t)
		}
		if !slices.Contains(o.targets, t) {
			o.targets = append(o.targets, t)
		}
	}
	return o, nil
}

func datastoreSizes(quick bool) kvload.Sizes {
	s := kvload.Sizes{
		Rounds:        3,
		PutClients:    []int{1, 16, 256},
		PutOps:        []int{8000, 40000, 60000},
		CASClients:    []int{16, 64},
		CASOps:        []int{25000, 40000},
		CASKeys:       1000,
		ListKeys:      10000,
		ListValue:     1024,
		ListLimit:     500,
		ListRuns:      50,
		ListMaxTime:   30 * time.Second,
		Watchers:      100,
		WatchObjects:  100,
		WatchWarmup:   10,
		WatchEvents:   500,
		WatchMaxTime:  30 * time.Second,
		DBKeys:        1000,
		DBRounds:      100,
		DBClients:     128,
		PutValue:      256,
		Idle:          3 * time.Second,
		PhaseTimeout:  3 * time.Minute,
		DBFillTimeout: 4 * time.Minute,
	}
	if quick {
		s.Rounds = 1
		s.PutOps, s.CASOps = []int{800, 4000, 6000}, []int{2500, 4000}
		s.ListKeys, s.ListRuns, s.ListMaxTime = 2000, 3, 10*time.Second
		s.WatchWarmup, s.WatchEvents, s.WatchMaxTime = 3, 30, 10*time.Second
		s.DBRounds = 5
		s.Idle = 500 * time.Millisecond
		s.PhaseTimeout, s.DBFillTimeout = time.Minute, time.Minute
	}
	return s
}

// target is one datastore implementation under test: a program with the `ketch datastore`
// command line.
type target struct {
	name       string
	bin        string
	subcommand []string
	// dbSizeArgs are extra flags for the db-size server, so both targets keep the same history.
	dbSizeArgs []string
	dbFile     func(dataDir string) (string, error)
}

// targetResult is everything measured on one target; a failed phase leaves its rows out and a
// failure message instead of aborting the other phases.
type targetResult struct {
	kvload.Result
	failures []string
}

func runDatastore(args []string) error {
	opts, err := parseDatastoreOptions(args)
	if err != nil {
		return err
	}
	if _, err := checkBinary(&opts.ketchBin); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locate own executable for etcd-server: %w", err)
	}
	ctx, stop := interruptible()
	defer stop()

	root, err := makeDataRoot(opts.dataRoot)
	if err != nil {
		return err
	}
	defer func() {
		if err := os.RemoveAll(root); err != nil {
			fmt.Fprintf(os.Stderr, "ketch-bench: remove %s: %v\n", root, err)
		}
	}()

	started := time.Now()
	logf := progressLog(started)
	machine := report.DescribeMachine(root, opts.ketchBin)
	sz := datastoreSizes(opts.quick)
	targets := map[string]target{
		// Like etcd, ketch keeps all 100,000 revisions for the db-size phase; its default history
		// cap would compact most of them during the fill.
		"ketch": {name: "ketch", bin: opts.ketchBin, subcommand: []string{"datastore"}, dbSizeArgs: []string{"--history-revisions=0"}, dbFile: kvload.KetchDBFile},
		"etcd":  {name: "etcd", bin: self, subcommand: []string{etcdServerCmd.name}, dbFile: kvload.EtcdDBFile},
	}

	results, err := runTargets(ctx, opts.targets, targets, sz, root, logf)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted; servers stopped and %s removed", root)
	}
	if err != nil {
		return err
	}

	rep := sections.Datastore{Quick: opts.quick, Args: opts.args, KetchBin: opts.ketchBin, Targets: opts.targets,
		Sizes: sz, Machine: machine, Results: map[string]*kvload.Result{}, Elapsed: time.Since(started), Date: started}
	var failed []string
	for _, name := range opts.targets {
		rep.Results[name] = &results[name].Result
		for _, f := range results[name].failures {
			failed = append(failed, name+": "+f)
		}
	}
	section := rep.Section()
	fmt.Println(rep.Table())
	if len(failed) > 0 {
		// Partial numbers are printed above but never replace a complete table in --out.
		msg := fmt.Sprintf("%d part(s) failed", len(failed))
		if opts.out != "" {
			msg += ", " + opts.out + " not updated"
		}
		return fmt.Errorf("%s:\n  %s", msg, strings.Join(failed, "\n  "))
	}
	if opts.out != "" {
		if err := report.WriteSection(opts.out, "datastore", section); err != nil {
			return fmt.Errorf("write %s: %w", opts.out, err)
		}
		logf("wrote %s (run took %s)", opts.out, rep.Elapsed.Round(time.Second))
	}
	return nil
}

type phase struct {
	name string
	run  func(context.Context, *kvload.Env, *kvload.Result) error
}

// runTargets benchmarks the targets side by side. This machine's disk and CPU vary from minute
// to minute (the same run can differ by a factor of two), so each load phase runs sz.Rounds
// times, alternating between the targets (ketch, etcd, then etcd, ketch, ...), and every row
// reports the median. All load phases run on one server per target, started together; the
// db-size phase then runs on a second fresh server per target so that the file holds only its
// own updates.
func runTargets(ctx context.Context, names []string, targets map[string]target, sz kvload.Sizes, root string, logf func(string, ...any)) (map[string]*targetResult, error) {
	results := map[string]*targetResult{}
	for _, name := range names {
		results[name] = &targetResult{}
	}
	payload := kvload.NewPayload()
	loadPhases := []phase{{"put", kvload.Put}, {"cas", kvload.CAS}, {"list", kvload.List}, {"watch", kvload.Watch}}
	var started []target
	for _, name := range names {
		started = append(started, targets[name])
	}
	err := withServers(ctx, started, root, "load", logf, func(srvs map[string]*targetServer) {
		for _, p := range loadPhases {
			rounds := map[string][]*kvload.Result{}
			for round := range sz.Rounds {
				order := slices.Clone(names)
				if round%2 == 1 {
					slices.Reverse(order)
				}
				for _, name := range order {
					srv, res := srvs[name], &kvload.Result{}
					if srv.Exited() {
						continue
					}
					env := srv.env(sz, payload)
					err := runPhase(ctx, srv, p.name, sz.PhaseTimeout, func(pctx context.Context) error { return p.run(pctx, env, res) })
					if err != nil {
						results[name].failures = append(results[name].failures, fmt.Sprintf("%s (round %d): %v", p.name, round+1, err))
						srv.logf("%s FAILED: %v", p.name, err)
						continue
					}
					rounds[name] = append(rounds[name], res)
				}
				if ctx.Err() != nil {
					return
				}
			}
			for name, rs := range rounds {
				results[name].Measurements = append(results[name].Measurements, medians(rs)...)
				results[name].Notes = append(results[name].Notes, rs[0].Notes...)
			}
		}
		for _, name := range names {
			srv := srvs[name]
			if srv.Exited() {
				continue
			}
			env := srv.env(sz, payload)
			if err := runPhase(ctx, srv, "memory", sz.PhaseTimeout, func(pctx context.Context) error { return kvload.Memory(pctx, env, &results[name].Result) }); err != nil {
				results[name].failures = append(results[name].failures, fmt.Sprintf("memory: %v", err))
			}
		}
	})
	if err != nil || ctx.Err() != nil {
		return results, err
	}
	for _, t := range started {
		res := results[t.name]
		t.subcommand = append(slices.Clone(t.subcommand), t.dbSizeArgs...)
		err := withServers(ctx, []target{t}, root, "dbsize", logf, func(srvs map[string]*targetServer) {
			srv := srvs[t.name]
			env := srv.env(sz, payload)
			if err := runPhase(ctx, srv, "dbsize", sz.DBFillTimeout, func(pctx context.Context) error {
				return kvload.DBSize(pctx, env, &res.Result)
			}); err != nil {
				res.failures = append(res.failures, fmt.Sprintf("dbsize: %v", err))
				srv.logf("dbsize FAILED: %v", err)
			}
		})
		if err != nil {
			res.failures = append(res.failures, err.Error())
		}
		if ctx.Err() != nil {
			return results, nil
		}
	}
	return results, nil
}

// medians merges the rounds of one phase: each row gets the median of its values.
func medians(rounds []*kvload.Result) []kvload.Measurement {
	var out []kvload.Measurement
	for _, m := range rounds[0].Measurements {
		var vals []float64
		for _, r := range rounds {
			for _, rm := range r.Measurements {
				if rm.Name == m.Name {
					vals = append(vals, rm.Value)
				}
			}
		}
		m.Value = stats.Median(vals)
		out = append(out, m)
	}
	return out
}

// targetServer is one target's server process, started by the bench.
type targetServer struct {
	*harness.Process
	target   target
	endpoint string
	dataDir  string
	logPath  string
	logf     func(string, ...any)
}

// env is what the workload's phases need to know about the server.
func (s *targetServer) env(sz kvload.Sizes, payload *kvload.Payload) *kvload.Env {
	return &kvload.Env{Endpoint: s.endpoint, PID: s.PID(), DataDir: s.dataDir, DBFile: s.target.dbFile,
		Sizes: sz, Payload: payload, Logf: s.logf}
}

// startTarget runs a target on a free loopback port. Output goes to logPath so a quiet run stays
// quiet but failures can still be explained.
func startTarget(t target, dataDir, logPath string, logf func(string, ...any)) (*targetServer, error) {
	addr, err := harness.FreeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	endpoint := "http://" + addr
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	out, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create server log: %w", err)
	}
	defer out.Close()
	args := append(slices.Clone(t.subcommand), "--data-dir", dataDir, "--listen-client-urls", endpoint)
	cmd := exec.Command(t.bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	// SIGKILL if the bench dies: the server must not linger holding its port and dir.
	p, err := harness.Start(cmd, syscall.SIGKILL)
	if err != nil {
		return nil, err
	}
	return &targetServer{Process: p, target: t, endpoint: endpoint, dataDir: dataDir, logPath: logPath,
		logf: func(format string, a ...any) { logf("%s: %s", t.name, fmt.Sprintf(format, a...)) }}, nil
}

// waitReady waits for the Status RPC, the datastore's documented readiness signal.
func (s *targetServer) waitReady(ctx context.Context, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := harness.WaitEtcd(wctx, s.endpoint, s.Done()); err != nil {
		return fmt.Errorf("%s not ready: %w; log tail:\n%s", s.target.name, err, harness.Tail(s.logPath, 40))
	}
	return nil
}

// withServers starts every target on a fresh data dir under root, runs fn, then stops the
// servers and removes their data dirs whatever happened, so a failed or interrupted run leaves
// nothing behind.
func withServers(ctx context.Context, targets []target, root, purpose string, logf func(string, ...any), fn func(map[string]*targetServer)) (err error) {
	srvs := map[string]*targetServer{}
	defer func() {
		for _, s := range srvs {
			// SIGTERM first, so the server can close its database cleanly.
			if _, stopErr := s.Stop(syscall.SIGTERM, 15*time.Second); stopErr != nil && err == nil {
				err = fmt.Errorf("stop %s server: %w", s.target.name, stopErr)
			}
			if rmErr := errors.Join(os.RemoveAll(s.dataDir), os.Remove(s.logPath)); rmErr != nil && err == nil {
				err = fmt.Errorf("clean up %s: %w", s.dataDir, rmErr)
			}
		}
	}()
	for _, t := range targets {
		dataDir := filepath.Join(root, t.name+"-"+purpose)
		s, err := startTarget(t, dataDir, dataDir+".log", logf)
		if err != nil {
			return fmt.Errorf("start %s server: %w", t.name, err)
		}
		srvs[t.name] = s
		if err := s.waitReady(ctx, time.Minute); err != nil {
			return fmt.Errorf("wait for %s server: %w", t.name, err)
		}
		s.logf("server ready (pid %d, %s, data dir %s)", s.PID(), s.endpoint, dataDir)
	}
	fn(srvs)
	for _, s := range srvs {
		if s.Exited() {
			return fmt.Errorf("%s server exited during the run (%v); log tail:\n%s", s.target.name, s.Wait(), harness.Tail(s.logPath, 40))
		}
	}
	return nil
}

// runPhase bounds a phase in time and aborts it as soon as the server process dies, because
// the etcd client would otherwise wait for a connection until the timeout.
func runPhase(ctx context.Context, s *targetServer, name string, timeout time.Duration, fn func(context.Context) error) error {
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pctx, cancelTimeout := context.WithTimeoutCause(cctx, timeout, fmt.Errorf("phase %s timed out after %v", name, timeout))
	defer cancelTimeout()
	go func() {
		select {
		case <-s.Done():
			// The caller reports the exit with the server's log tail.
			cancel(fmt.Errorf("%s server exited (%v)", s.target.name, s.Wait()))
		case <-pctx.Done():
		}
	}()
	start := time.Now()
	err := fn(pctx)
	if err != nil && pctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", context.Cause(pctx), err)
	}
	if err == nil {
		s.logf("%s done in %s", name, time.Since(start).Round(100*time.Millisecond))
	}
	return err
}
