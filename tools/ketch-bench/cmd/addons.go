package cmd

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

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/tools/ketch-bench/addonpods"
	"github.com/ketch-k8s/ketch/tools/ketch-bench/dashbench"
	"github.com/ketch-k8s/ketch/tools/ketch-bench/podnet"
	"github.com/ketch-k8s/ketch/tools/ketch-bench/sections"
)

// `ketch-bench addons` measures the bundled addons as a user of `ketch server` meets them: how
// long after exec they are all available and what their pods cost in memory (addonpods), and
// how fast the cluster DNS answers a pod (podnet). It starts its nodes as the server bench does.

var addonsCmd = &command{
	name:     "addons",
	synopsis: "addons --ketch-bin PATH [flags]",
	help: `addons: the bundled addons of ketch server: exec to all addon Deployments available (cold
starts), the addon pods' idle memory, DNS lookup latency from a pod through the cluster DNS,
and the dashboard (exec to answering, its pod list with 1,000 pods, a change in a browser). Runs as root, holds /tmp/ketch-host.lock, starts real servers one at a time (the host must
not run another ketch node) and cleans up after them with package/ketch-killall.sh.

  --ketch-bin PATH     ketch binary to benchmark (required)
  --out FILE           markdown file whose addons section is replaced
  --quick              2 cold starts instead of 3, 20 s idle instead of 1 min
  --data-root DIR      parent of the scratch data dirs (default /var/tmp; never tmpfs)
  --killall PATH       ketch-killall.sh (default package/ketch-killall.sh, here or next to bin/)
`,
	run: runAddons,
}

type addonsSizes struct {
	runs          int
	idle          time.Duration // all addons available → memory sample, on the last run
	lookups       int
	addonsTimeout time.Duration // exec → all addons available
	// The dashboard's: Pending pods in the cluster, pod lists timed, new pods watched arrive.
	dashPods, dashRequests, dashChanges int
}

func defaultAddonsSizes(quick bool) addonsSizes {
	s := addonsSizes{runs: 3, idle: time.Minute, lookups: 1000, addonsTimeout: 3 * time.Minute, dashPods: 1000, dashRequests: 50, dashChanges: 20}
	if quick {
		s.runs, s.idle, s.dashRequests, s.dashChanges = 2, 20*time.Second, 10, 5
	}
	return s
}

func runAddons(args []string) error {
	return runNodeBench("addons", args, func(ctx context.Context, nb *nodeBench) (string, error) {
		logsBefore, err := podLogEntries()
		if err != nil {
			return "", err
		}
		b := &addonsBench{nodes: nb.nodes, sizes: defaultAddonsSizes(nb.opts.quick), logf: nb.logf, logsBefore: logsBefore}
		nb.cleanup = b.cleanup
		res, err := b.run(ctx)
		if err != nil {
			return "", err
		}
		rep := sections.Addons{Quick: nb.opts.quick, Args: nb.opts.args, KetchBin: nb.opts.ketchBin, NodeName: benchNodeName,
			Runs: b.sizes.runs, Idle: b.sizes.idle, Machine: nb.machine, Result: res, Elapsed: time.Since(nb.started), Date: nb.started}
		return rep.Section(), nil
	})
}

// addonsBench runs its nodes with serverNodes, which also cleans up after them.
type addonsBench struct {
	nodes      *serverNodes
	sizes      addonsSizes
	logf       func(string, ...any)
	work       string          // the netbench binary and image
	logsBefore map[string]bool // pod log entries on the host before the bench
}

func (b *addonsBench) run(ctx context.Context) (sections.AddonsResult, error) {
	res := sections.AddonsResult{Load: report.LoadAverage()}
	var err error
	if b.work, err = os.MkdirTemp("", "ketch-bench-addons-"); err != nil {
		return res, fmt.Errorf("work dir: %w", err)
	}
	// Built first: a broken netbench should fail the bench before minutes of start-ups.
	repo := filepath.Dir(filepath.Dir(b.nodes.killall)) // killall is the repository's package/ketch-killall.sh
	tarball, err := podnet.BuildImage(ctx, repo, b.work, b.logf)
	if err != nil {
		return res, err
	}
	if st, err := os.Stat(tarball); err == nil {
		res.Image = st.Size()
	}

	for i := range b.sizes.runs {
		label := fmt.Sprintf("cold-%d", i+1)
		dirs, err := b.nodes.newDirs(fmt.Sprintf("node-%d", i+1))
		if err != nil {
			return res, err
		}
		run, cs, err := b.start(ctx, dirs, label)
		if err != nil {
			return res, err
		}
		res.Runs = append(res.Runs, run)
		if i == 0 {
			res.Notes = b.nodes.node.Notes()
		}
		if i == b.sizes.runs-1 {
			if err := b.lastRun(ctx, cs, tarball, &res); err != nil {
				return res, err
			}
		}
		if _, err := b.nodes.node.Stop(b.nodes.stopTimeout); err != nil {
			return res, err
		}
		if err := b.nodes.cleanDirs(dirs); err != nil {
			return res, err
		}
	}
	res.LoadEnd = report.LoadAverage()
	return res, nil
}

// start starts a server on fresh dirs and waits for node Ready, then for every addon.
func (b *addonsBench) start(ctx context.Context, dirs *nodeDirs, label string) (sections.AddonsRun, kubernetes.Interface, error) {
	run := sections.AddonsRun{Label: label}
	sr, err := b.nodes.start(ctx, dirs, label)
	if err != nil {
		return run, nil, err
	}
	ready, _ := sr.Phase(harness.ReadyPhase)
	run.NodeReady = ready.Observed
	cfg, err := clientcmd.BuildConfigFromFlags("", b.nodes.node.Config.Kubeconfig)
	if err != nil {
		return run, nil, fmt.Errorf("%s: %w", label, err)
	}
	// The poll runs every 100 ms; the default client rate limit (5/s) would hold it up.
	cfg.QPS, cfg.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return run, nil, fmt.Errorf("%s: %w", label, err)
	}
	// The front door answers for the dashboard some time after node Ready: poll it meanwhile.
	dashc, err := dashbench.HTTPClient(b.serverCA())
	if err != nil {
		return run, nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, b.sizes.addonsTimeout-time.Since(b.nodes.node.Started))
	defer cancel()
	dashUp := make(chan error, 1)
	go func() {
		var err error
		run.Dashboard, err = dashbench.WaitAnswering(dctx, dashc, frontDoor, b.nodes.node.Started, b.nodes.node.Done())
		dashUp <- err
	}()
	if run.Addons, err = addonpods.Wait(ctx, cs, b.nodes.node, b.sizes.addonsTimeout, b.logf); err != nil {
		return run, nil, fmt.Errorf("%s: %w", label, err)
	}
	if err := <-dashUp; err != nil {
		return run, nil, fmt.Errorf("%s: %w", label, err)
	}
	var parts []string
	for _, r := range addonpods.Roles {
		parts = append(parts, fmt.Sprintf("%s %.2fs", r, run.Addons[r].Seconds()))
	}
	b.logf("%s: all addons available %.2fs after exec (%s); the dashboard answered %.2fs after exec", label, run.All().Seconds(), strings.Join(parts, ", "), run.Dashboard.Seconds())
	return run, cs, nil
}

// lastRun measures the last node further: the addons' idle memory, then DNS from a pod.
func (b *addonsBench) lastRun(ctx context.Context, cs kubernetes.Interface, tarball string, res *sections.AddonsResult) error {
	n := b.nodes.node
	b.logf("idle for %s before the memory sample", b.sizes.idle)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-n.Done():
		return n.ExitError()
	case <-time.After(b.sizes.idle):
	}
	var err error
	if res.Memory, err = addonpods.ReadMemory(n.PID(), n.Config.Socket()); err != nil {
		return err
	}
	res.MemoryAfter = b.sizes.idle
	total := res.Memory.Total()
	b.logf("addon PSS %s (anon %s) in %d processes", report.Bytes(float64(total.PSS)), report.Bytes(float64(total.Anon)), total.Procs)

	k := harness.Ketch{Bin: n.Config.Bin, Kubeconfig: n.Config.Kubeconfig}
	ictx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = k.ImportImage(ictx, n.Config.Socket(), tarball)
	cancel()
	if err == nil {
		res.DNS, err = podnet.DNS(ctx, k, cs, benchNodeName, b.sizes.lookups, b.logf)
	}
	if err == nil {
		b.logf("the dashboard with %d Pending pods", b.sizes.dashPods)
		res.Dash, err = dashbench.Measure(ctx, dashbench.Options{
			Ketch: k, DataDir: n.Config.DataDir, Server: frontDoor, ServerCA: b.serverCA(),
			ServingCert: filepath.Join(n.Config.DataDir, "server", "tls", "serving-kube-apiserver.crt"),
			Client:      cs, Pods: b.sizes.dashPods, Requests: b.sizes.dashRequests, Changes: b.sizes.dashChanges, Logf: b.logf,
		})
	}
	if err != nil && n.Exited() {
		return n.ExitError()
	}
	return err
}

// frontDoor is the server's API and dashboard address, as the bench's servers listen.
const frontDoor = "https://127.0.0.1:6443"

func (b *addonsBench) serverCA() string {
	return filepath.Join(b.nodes.node.Config.DataDir, "server", "tls", "server-ca.crt")
}

func (b *addonsBench) cleanup() error {
	err := b.nodes.cleanup()
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
