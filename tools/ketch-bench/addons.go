package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// `ketch-bench addons` measures the bundled addons as a user of `ketch server` meets them: how
// long after exec they are all available, what their pods cost in memory, and how fast the
// cluster DNS answers a pod.

// addonRoles are the addon Deployments in kube-system; each is also the role (argv[1]) its
// pods give /ketch-addons.
var addonRoles = []string{"coredns", "metrics-server", "servicelb", "local-path-provisioner"}

const addonsNamespace = "kube-system"

type addonsSizes struct {
	runs          int
	idle          time.Duration // all addons available → memory sample, on the last run
	lookups       int
	addonsTimeout time.Duration // exec → all addons available
}

func defaultAddonsSizes(quick bool) addonsSizes {
	s := addonsSizes{runs: 3, idle: time.Minute, lookups: 1000, addonsTimeout: 3 * time.Minute}
	if quick {
		s.runs, s.idle = 2, 20*time.Second
	}
	return s
}

// addonsRun is one cold start: exec → node Ready, and exec → each addon Deployment seen
// available.
type addonsRun struct {
	label     string
	nodeReady time.Duration
	addons    map[string]time.Duration
}

// all is when the last addon became available.
func (r addonsRun) all() time.Duration {
	var last time.Duration
	for _, d := range r.addons {
		last = max(last, d)
	}
	return last
}

type addonsResult struct {
	runs    []addonsRun
	memory  addonMemory
	dns     []time.Duration // one per measured lookup
	image   int64           // netbench image archive, bytes
	notes   []string        // the server's other `ketch:` lines
	load    string          // 1-minute load average before the run
	loadEnd string          // and after it
}

func runAddonsBench(args []string) (err error) {
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
	logsBefore, err := podLogEntries()
	if err != nil {
		return err
	}
	root, err := makeDataRoot(opts.dataRoot)
	if err != nil {
		return err
	}
	b := &addonsBench{
		srv:   &serverBench{opts: opts, sizes: defaultServerSizes(opts.quick), root: root, logf: logf},
		sizes: defaultAddonsSizes(opts.quick), logf: logf, logsBefore: logsBefore,
	}
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
	rep := addonsReport{opts: opts, sizes: b.sizes, machine: machine, res: res, elapsed: time.Since(started), date: started}
	return publish(opts.out, addonsBeginMarker, addonsEndMarker, rep.section(), rep.elapsed, logf)
}

// addonsBench runs its nodes with the server bench's machinery, which also cleans up after
// them.
type addonsBench struct {
	srv        *serverBench
	sizes      addonsSizes
	logf       func(string, ...any)
	work       string          // the netbench binary and image
	logsBefore map[string]bool // pod log entries on the host before the bench
}

func (b *addonsBench) run(ctx context.Context) (addonsResult, error) {
	res := addonsResult{load: loadAverage()}
	var err error
	if b.work, err = os.MkdirTemp("", "ketch-bench-addons-"); err != nil {
		return res, err
	}
	// Built first: a broken netbench should fail the bench before minutes of start-ups.
	repo := filepath.Dir(filepath.Dir(b.srv.opts.killall)) // killall is the repository's scripts/ketch-killall.sh
	tarball, err := buildNetbenchImage(ctx, repo, b.work, b.logf)
	if err != nil {
		return res, err
	}
	if st, err := os.Stat(tarball); err == nil {
		res.image = st.Size()
	}

	for i := range b.sizes.runs {
		label := fmt.Sprintf("cold-%d", i+1)
		dirs, err := b.srv.newDirs(fmt.Sprintf("node-%d", i+1))
		if err != nil {
			return res, err
		}
		run, cs, err := b.start(ctx, dirs, label)
		if err != nil {
			return res, err
		}
		res.runs = append(res.runs, run)
		if i == 0 {
			res.notes = b.srv.node.notes()
		}
		if i == b.sizes.runs-1 {
			if res.memory, res.dns, err = b.lastRun(ctx, dirs, cs, tarball); err != nil {
				return res, err
			}
		}
		if _, err := b.srv.node.stop(b.srv.sizes.stopTimeout); err != nil {
			return res, err
		}
		if err := b.srv.cleanDirs(dirs); err != nil {
			return res, err
		}
	}
	res.loadEnd = loadAverage()
	return res, nil
}

// start starts a server on fresh dirs and waits for node Ready, then for every addon.
func (b *addonsBench) start(ctx context.Context, dirs *nodeDirs, label string) (addonsRun, kubernetes.Interface, error) {
	run := addonsRun{label: label}
	sr, err := b.srv.start(ctx, dirs, label)
	if err != nil {
		return run, nil, err
	}
	ready, _ := sr.phase(readyPhase)
	run.nodeReady = ready.observed
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dirs.data, "admin.yaml"))
	if err != nil {
		return run, nil, fmt.Errorf("%s: %w", label, err)
	}
	// The poll runs every 100 ms; the default client rate limit (5/s) would hold it up.
	cfg.QPS, cfg.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return run, nil, fmt.Errorf("%s: %w", label, err)
	}
	if run.addons, err = b.waitAddons(ctx, cs); err != nil {
		return run, nil, fmt.Errorf("%s: %w", label, err)
	}
	var parts []string
	for _, r := range addonRoles {
		parts = append(parts, fmt.Sprintf("%s %.2fs", r, run.addons[r].Seconds()))
	}
	b.logf("%s: all addons available %.2fs after exec (%s)", label, run.all().Seconds(), strings.Join(parts, ", "))
	return run, cs, nil
}

// lastRun measures the last node further: the addons' idle memory, then DNS from a pod.
func (b *addonsBench) lastRun(ctx context.Context, dirs *nodeDirs, cs kubernetes.Interface, tarball string) (addonMemory, []time.Duration, error) {
	n := b.srv.node
	b.logf("idle for %s before the memory sample", b.sizes.idle)
	select {
	case <-ctx.Done():
		return addonMemory{}, nil, ctx.Err()
	case <-n.done:
		return addonMemory{}, nil, n.exitError()
	case <-time.After(b.sizes.idle):
	}
	mem, err := addonsMemory(n.pid(), dirs.socket())
	if err != nil {
		return mem, nil, err
	}
	mem.idle = b.sizes.idle
	total := mem.total()
	b.logf("addon PSS %s (anon %s) in %d processes", fmtBytes(float64(total.pss)), fmtBytes(float64(total.anon)), total.procs)

	lat, err := b.dnsPhase(ctx, dirs, cs, tarball)
	if err != nil && n.exited() {
		return mem, nil, n.exitError()
	}
	return mem, lat, err
}

func (b *addonsBench) cleanup() error {
	err := b.srv.cleanup()
	if b.logsBefore != nil {
		err = errors.Join(err, removeNewPodLogs(b.logsBefore))
	}
	if b.work != "" {
		os.RemoveAll(b.work)
	}
	return err
}

// The kubelet writes pod logs to the host's /var/log, outside the node's dirs, and
// ketch-killall.sh keeps them as k3s does; the addon pods of the bench's nodes are not the
// host's, so their logs go at the end.
var podLogDirs = []string{"/var/log/pods", "/var/log/containers"}

func podLogEntries() (map[string]bool, error) {
	entries := map[string]bool{}
	for _, dir := range podLogDirs {
		list, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("list pod logs: %w", err)
		}
		for _, e := range list {
			entries[filepath.Join(dir, e.Name())] = true
		}
	}
	return entries, nil
}

// removeNewPodLogs removes the pod log entries that were not there before: with the host lock
// held and no other node running, they are the logs of the bench's own pods.
func removeNewPodLogs(before map[string]bool) error {
	now, err := podLogEntries()
	if err != nil {
		return err
	}
	var errs []error
	for p := range now {
		if !before[p] {
			errs = append(errs, os.RemoveAll(p))
		}
	}
	return errors.Join(errs...)
}
