package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// target is one datastore implementation under test.
type target struct {
	name       string
	bin        string
	subcommand []string
	// dbSizeArgs are extra flags for the db-size server, so both targets keep the same history.
	dbSizeArgs []string
	// dbFile locates the database file whose size is reported.
	dbFile func(dataDir string) (string, error)
}

// targetResult collects everything measured for one target; a failed phase leaves its rows
// empty and a failure message instead of aborting the other phases.
type targetResult struct {
	name         string
	measurements []measurement
	notes        []string
	failures     []string
}

func (r *targetResult) add(m ...measurement) { r.measurements = append(r.measurements, m...) }

func runDatastoreBench(args []string) error {
	opts, err := parseOptions(args)
	if err != nil {
		return err
	}
	ketchBin, err := filepath.Abs(opts.ketchBin)
	if err != nil {
		return fmt.Errorf("--ketch-bin: %w", err)
	}
	if st, err := os.Stat(ketchBin); err != nil {
		return fmt.Errorf("--ketch-bin: %w", err)
	} else if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("--ketch-bin: %s is not an executable file", ketchBin)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locate own executable for etcd-server: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// A second Ctrl-C should kill the bench at once; the servers die with it (Pdeathsig).
		stop()
	}()

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
	machine := collectMachineInfo(root, ketchBin)
	sz := defaultSizes(opts.quick)
	targets := map[string]target{
		// Like etcd, ketch keeps all 100,000 revisions for the db-size phase; its default history
		// cap would compact most of them during the fill.
		"ketch": {name: "ketch", bin: ketchBin, subcommand: []string{"datastore"}, dbSizeArgs: []string{"--history-revisions=0"}, dbFile: ketchDBFile},
		"etcd":  {name: "etcd", bin: self, subcommand: []string{"etcd-server"}, dbFile: etcdDBFile},
	}

	results, err := runTargets(ctx, opts.targets, targets, sz, root, logf)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted; servers stopped and %s removed", root)
	}
	if err != nil {
		return err
	}

	rep := report{
		opts:    opts,
		sizes:   sz,
		machine: machine,
		results: results,
		elapsed: time.Since(started),
		date:    started,
	}
	section := rep.section()
	fmt.Println(rep.table())
	var failed []string
	for _, name := range opts.targets {
		for _, f := range results[name].failures {
			failed = append(failed, name+": "+f)
		}
	}
	if len(failed) > 0 {
		// Partial numbers are printed above but never replace a complete table in --out.
		msg := fmt.Sprintf("%d part(s) failed", len(failed))
		if opts.out != "" {
			msg += ", " + opts.out + " not updated"
		}
		return fmt.Errorf("%s:\n  %s", msg, strings.Join(failed, "\n  "))
	}
	if opts.out != "" {
		if err := writeSection(opts.out, section); err != nil {
			return fmt.Errorf("write %s: %w", opts.out, err)
		}
		logf("wrote %s (run took %s)", opts.out, rep.elapsed.Round(time.Second))
	}
	return nil
}

type phase struct {
	name string
	run  func(context.Context, *phaseEnv, *targetResult) error
}

// runTargets benchmarks the targets side by side. This machine's disk and CPU vary from minute
// to minute (the same run can differ by a factor of two), so each load phase runs sz.rounds
// times, alternating between the targets (ketch, etcd, then etcd, ketch, ...), and every row
// reports the median. All load phases run on one server per target, started together; the
// db-size phase then runs on a second fresh server per target so that the file holds only its
// own updates.
func runTargets(ctx context.Context, names []string, targets map[string]target, sz sizes, root string, logf func(string, ...any)) (map[string]*targetResult, error) {
	results := map[string]*targetResult{}
	for _, name := range names {
		results[name] = &targetResult{name: name}
	}
	payload := newPayloadSource()
	loadPhases := []phase{{"put", putPhase}, {"cas", casPhase}, {"list", listPhase}, {"watch", watchPhase}}
	var started []target
	for _, name := range names {
		started = append(started, targets[name])
	}
	err := withServers(ctx, started, root, "load", logf, func(envs map[string]*phaseEnv) {
		for _, env := range envs {
			env.sizes, env.payload = sz, payload
		}
		for _, p := range loadPhases {
			rounds := map[string][]*targetResult{}
			for round := range sz.rounds {
				order := slices.Clone(names)
				if round%2 == 1 {
					slices.Reverse(order)
				}
				for _, name := range order {
					env, res := envs[name], &targetResult{name: name}
					if env.srv.exited() {
						continue
					}
					err := runPhase(ctx, env, p.name, sz.phaseTimeout, func(pctx context.Context) error { return p.run(pctx, env, res) })
					if err != nil {
						results[name].failures = append(results[name].failures, fmt.Sprintf("%s (round %d): %v", p.name, round+1, err))
						env.logf("%s FAILED: %v", p.name, err)
						continue
					}
					rounds[name] = append(rounds[name], res)
				}
				if ctx.Err() != nil {
					return
				}
			}
			for name, rs := range rounds {
				results[name].add(medians(rs)...)
				results[name].notes = append(results[name].notes, rs[0].notes...)
			}
		}
		for _, name := range names {
			env := envs[name]
			if env.srv.exited() {
				continue
			}
			if err := runPhase(ctx, env, "memory", sz.phaseTimeout, func(pctx context.Context) error { return memoryPhase(pctx, env, results[name]) }); err != nil {
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
		err := withServers(ctx, []target{t}, root, "dbsize", logf, func(envs map[string]*phaseEnv) {
			env := envs[t.name]
			env.sizes, env.payload = sz, payload
			if err := runPhase(ctx, env, "dbsize", sz.dbFillTimeout, func(pctx context.Context) error {
				return dbSizePhase(pctx, env, res)
			}); err != nil {
				res.failures = append(res.failures, fmt.Sprintf("dbsize: %v", err))
				env.logf("dbsize FAILED: %v", err)
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
func medians(rounds []*targetResult) []measurement {
	var out []measurement
	for _, m := range rounds[0].measurements {
		var vals []float64
		for _, r := range rounds {
			for _, rm := range r.measurements {
				if rm.name == m.name {
					vals = append(vals, rm.value)
				}
			}
		}
		slices.Sort(vals)
		m.value = vals[(len(vals)-1)/2]
		out = append(out, m)
	}
	return out
}

// phaseEnv is what a phase needs to know about the server it measures.
type phaseEnv struct {
	target  target
	srv     *server
	dataDir string
	sizes   sizes
	payload *payloadSource
	logf    func(string, ...any)
}

// withServers starts every target on a fresh data dir under root, runs fn, then stops the
// servers and removes their data dirs whatever happened, so a failed or interrupted run leaves
// nothing behind.
func withServers(ctx context.Context, targets []target, root, purpose string, logf func(string, ...any), fn func(map[string]*phaseEnv)) (err error) {
	envs := map[string]*phaseEnv{}
	defer func() {
		for _, env := range envs {
			if stopErr := env.srv.stop(); stopErr != nil && err == nil {
				err = fmt.Errorf("stop %s server: %w", env.target.name, stopErr)
			}
			if rmErr := errors.Join(os.RemoveAll(env.dataDir), os.Remove(env.dataDir+".log")); rmErr != nil && err == nil {
				err = fmt.Errorf("clean up %s: %w", env.dataDir, rmErr)
			}
		}
	}()
	for _, t := range targets {
		tlog := func(format string, a ...any) { logf("%s: %s", t.name, fmt.Sprintf(format, a...)) }
		dataDir := filepath.Join(root, t.name+"-"+purpose)
		srv, err := startServer(t.name, t.bin, t.subcommand, dataDir, dataDir+".log")
		if err != nil {
			return fmt.Errorf("start %s server: %w", t.name, err)
		}
		envs[t.name] = &phaseEnv{target: t, srv: srv, dataDir: dataDir, logf: tlog}
		if err := srv.waitReady(ctx, time.Minute); err != nil {
			return fmt.Errorf("wait for %s server: %w", t.name, err)
		}
		tlog("server ready (pid %d, %s, data dir %s)", srv.pid(), srv.endpoint, dataDir)
	}
	fn(envs)
	for _, env := range envs {
		if env.srv.exited() {
			return fmt.Errorf("%s server exited during the run (%v); log tail:\n%s", env.target.name, env.srv.waitErr, env.srv.logTail())
		}
	}
	return nil
}

// runPhase bounds a phase in time and aborts it as soon as the server process dies, because
// the etcd client would otherwise wait for a connection until the timeout.
func runPhase(ctx context.Context, env *phaseEnv, name string, timeout time.Duration, fn func(context.Context) error) error {
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pctx, cancelTimeout := context.WithTimeoutCause(cctx, timeout, fmt.Errorf("phase %s timed out after %v", name, timeout))
	defer cancelTimeout()
	go func() {
		select {
		case <-env.srv.done:
			// The caller reports the exit with the server's log tail.
			cancel(fmt.Errorf("%s server exited (%v)", env.target.name, env.srv.waitErr))
		case <-pctx.Done():
		}
	}()
	start := time.Now()
	err := fn(pctx)
	if err != nil && pctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", context.Cause(pctx), err)
	}
	if err == nil {
		env.logf("%s done in %s", name, time.Since(start).Round(100*time.Millisecond))
	}
	return err
}
