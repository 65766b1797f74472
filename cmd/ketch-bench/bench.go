package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// target is one datastore implementation under test.
type target struct {
	name       string
	bin        string
	subcommand []string
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
	logf := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, a...))
	}
	machine := collectMachineInfo(root, ketchBin)
	sz := defaultSizes(opts.quick)
	targets := map[string]target{
		"ketch": {name: "ketch", bin: ketchBin, subcommand: []string{"datastore"}, dbFile: ketchDBFile},
		"etcd":  {name: "etcd", bin: self, subcommand: []string{"etcd-server"}, dbFile: etcdDBFile},
	}

	results := map[string]*targetResult{}
	for _, name := range opts.targets {
		res, err := runTarget(ctx, targets[name], sz, root, logf)
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted during %s; servers stopped and %s removed", name, root)
		}
		if err != nil {
			res.failures = append(res.failures, err.Error())
		}
		results[name] = res
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

// runTarget benchmarks one target: the load phases on one fresh server, then the db-size
// phase on a second fresh server so the file size reflects only its own 100k updates.
func runTarget(ctx context.Context, t target, sz sizes, root string, logf func(string, ...any)) (*targetResult, error) {
	res := &targetResult{name: t.name}
	payload := newPayloadSource()
	tlog := func(format string, a ...any) { logf("%s: %s", t.name, fmt.Sprintf(format, a...)) }

	loadPhases := []struct {
		name string
		run  func(context.Context, *phaseEnv, *targetResult) error
	}{
		{"put", putPhase},
		{"cas", casPhase},
		{"list", listPhase},
		{"watch", watchPhase},
		{"memory", memoryPhase},
	}
	err := withServer(ctx, t, filepath.Join(root, t.name+"-load"), tlog, func(env *phaseEnv) {
		env.sizes, env.payload = sz, payload
		for _, p := range loadPhases {
			if err := runPhase(ctx, env, p.name, sz.phaseTimeout, func(pctx context.Context) error {
				return p.run(pctx, env, res)
			}); err != nil {
				res.failures = append(res.failures, fmt.Sprintf("%s: %v", p.name, err))
				tlog("%s FAILED: %v", p.name, err)
				if env.srv.exited() || ctx.Err() != nil {
					return
				}
			}
		}
	})
	if err != nil || ctx.Err() != nil {
		return res, err
	}

	err = withServer(ctx, t, filepath.Join(root, t.name+"-dbsize"), tlog, func(env *phaseEnv) {
		env.sizes, env.payload = sz, payload
		if err := runPhase(ctx, env, "dbsize", sz.dbFillTimeout, func(pctx context.Context) error {
			return dbSizePhase(pctx, env, res)
		}); err != nil {
			res.failures = append(res.failures, fmt.Sprintf("dbsize: %v", err))
			tlog("dbsize FAILED: %v", err)
		}
	})
	return res, err
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

// withServer starts t on a fresh dataDir, runs fn, then stops the server and removes dataDir
// whatever happened, so a failed or interrupted run leaves nothing behind.
func withServer(ctx context.Context, t target, dataDir string, logf func(string, ...any), fn func(*phaseEnv)) (err error) {
	srv, err := startServer(t.name, t.bin, t.subcommand, dataDir, dataDir+".log")
	if err != nil {
		return fmt.Errorf("start %s server: %w", t.name, err)
	}
	defer func() {
		if stopErr := srv.stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("stop %s server: %w", t.name, stopErr)
		}
		if rmErr := errors.Join(os.RemoveAll(dataDir), os.Remove(dataDir+".log")); rmErr != nil && err == nil {
			err = fmt.Errorf("clean up %s: %w", dataDir, rmErr)
		}
	}()
	if err := srv.waitReady(ctx, time.Minute); err != nil {
		return fmt.Errorf("wait for %s server: %w", t.name, err)
	}
	logf("server ready (pid %d, %s, data dir %s)", srv.pid(), srv.endpoint, dataDir)
	fn(&phaseEnv{target: t, srv: srv, dataDir: dataDir, logf: logf})
	if srv.exited() {
		return fmt.Errorf("%s server exited during the run (%v); log tail:\n%s", t.name, srv.waitErr, srv.logTail())
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
