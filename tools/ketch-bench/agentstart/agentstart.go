// Package agentstart is the agent measurement of `ketch-bench multinode`: how long an agent of
// a scripts/ketch-cluster.sh cluster takes from start to a Ready node, joining for the first
// time (cold) and restarting (warm), and what it costs in memory once idle.
package agentstart

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/drain"

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/pkg/lifecycle"
)

// Phases are the agent's start-up lines, in order ("joined <server>" is shortened).
var Phases = []string{"joined", "node registered", harness.ReadyPhase}

// Settle is the pause between an agent's Ready and its next stop: the agent has more to do
// after Ready (pod network, kube-proxy's first sync).
const Settle = 3 * time.Second

// Config is the agent measured and how often.
type Config struct {
	Cluster *harness.Cluster
	Client  kubernetes.Interface // the cluster's, from this machine's namespace
	Agent   int                  // the node whose agent is measured
	Killall string               // package/ketch-killall.sh, run in the node's namespace
	// ColdRuns and WarmRuns are the starts of each kind, the cold ones first.
	ColdRuns, WarmRuns int
	Idle               time.Duration // the agent's last start → idle memory sample
	ReadyTimeout       time.Duration
	Logf               func(string, ...any)
}

// Start is one start of an agent, timed from just before `ketch-cluster.sh start`.
type Start struct {
	Label  string
	Ready  time.Duration       // until the API shows the Node Ready, reported by this run's kubelet
	Lease  time.Duration       // until the API shows the node's Lease renewed by this run (warm only)
	Stop   time.Duration       // `ketch-cluster.sh stop` before this start: SIGTERM → exit
	Clean  time.Duration       // cold only: ketch-killall.sh for the node, Node deletion, data dir removal
	Phases []harness.PhaseTime // the agent's own start-up lines, printed = its own clock
}

// Phase is the start's start-up line called name.
func (a Start) Phase(name string) (harness.PhaseTime, bool) {
	for _, p := range a.Phases {
		if p.Name == name {
			return p, true
		}
	}
	return harness.PhaseTime{}, false
}

// Result is the agent's starts and idle memory.
type Result struct {
	Cold, Warm []Start
	Idle       harness.NodeMemory
	IdleAfter  time.Duration // since the agent's last start
	Notes      []string      // the agent's other `ketch:` lines
}

// Run times cold joins and warm restarts of the agent, then samples its idle memory.
func Run(ctx context.Context, cfg Config) (Result, error) {
	var res Result
	c, i := cfg.Cluster, cfg.Agent
	name := c.Node(i)
	// Cold: a machine that joins for the first time. The old node is stopped and cleaned up
	// like a host being wiped (ketch-killall.sh, data dir removed); its Node object is deleted,
	// which is what lets a new machine (a new node password) take the name.
	for r := range cfg.ColdRuns {
		label := fmt.Sprintf("cold-%d", r+1)
		stopTook, err := stop(ctx, c, name)
		if err != nil {
			return res, err
		}
		t0 := time.Now()
		kctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		_, err = c.Run(kctx, harness.KillallEnv(c.DataDir(i), c.RunDir(i)), "exec", "--dir", c.Dir, name, "bash", cfg.Killall)
		cancel()
		if err != nil {
			return res, err
		}
		if err := harness.HostClean(c.DataDir(i), c.RunDir(i)); err != nil {
			return res, err
		}
		if err := deleteNode(ctx, cfg.Client, name); err != nil {
			return res, err
		}
		if err := harness.RemoveUnmounted(c.DataDir(i)); err != nil {
			return res, err
		}
		clean := time.Since(t0)
		run, err := start(ctx, cfg, label, time.Time{}, false)
		if err != nil {
			return res, err
		}
		run.Stop, run.Clean = stopTook, clean
		res.Cold = append(res.Cold, run)
	}
	// The idle sample is of the agent alone: no pods on its node. When the nodes turn Ready
	// together, the scheduler spreads the addons over them, and the cold joins above let it
	// place them on the new node again; move them off before the warm runs.
	defer func() {
		if err := uncordon(context.WithoutCancel(ctx), cfg.Client, name); err != nil {
			cfg.Logf("%v", err)
		}
	}()
	moved, err := emptyNode(ctx, cfg.Client, name)
	if err != nil {
		return res, err
	}
	if moved > 0 {
		cfg.Logf("%s cordoned and %s moved off it, so that the idle sample is of the agent alone", name, report.Plural(moved, "pod"))
	}
	// Warm: the agent's service restarting on the same host, data dir and running containers
	// kept.
	for r := range cfg.WarmRuns {
		label := fmt.Sprintf("warm-%d", r+1)
		stopTook, err := stop(ctx, c, name)
		if err != nil {
			return res, err
		}
		n, err := cfg.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return res, fmt.Errorf("get node %s: %w", name, err)
		}
		_, hb := lifecycle.ReadyCondition(n)
		run, err := start(ctx, cfg, label, hb, true)
		if err != nil {
			return res, err
		}
		run.Stop = stopTook
		res.Warm = append(res.Warm, run)
	}
	res.Notes = notes(c.Output(i))

	pid, err := c.PID(i)
	if err != nil {
		return res, err
	}
	last := res.Warm[len(res.Warm)-1]
	wait := cfg.Idle - last.Ready
	cfg.Logf("%s idle for %s before the memory sample", name, wait.Round(time.Second))
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(wait):
	}
	if res.Idle, err = harness.ReadNodeMemory(pid, c.Socket(i)); err != nil {
		return res, err
	}
	res.IdleAfter = cfg.Idle
	total := res.Idle.Total()
	cfg.Logf("%s idle: PSS %s (anon %s), RSS %s; %d shims, %d containers", name, report.Bytes(float64(total.PSS)),
		report.Bytes(float64(total.Anon)), report.Bytes(float64(total.RSS)), res.Idle.Shims.Procs, res.Idle.Containers.Procs)
	return res, nil
}

// stop stops the agent after Settle and returns how long `ketch-cluster.sh stop` took.
func stop(ctx context.Context, c *harness.Cluster, node string) (time.Duration, error) {
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(Settle):
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	if err := c.StopNode(sctx, node); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// start starts the agent and polls the API every 100 ms until the Node is Ready with a
// heartbeat of this run's kubelet: Ready, heartbeat not before the start (heartbeats have 1 s
// resolution) and after prevHeartbeat, the last one before the stop. With watchLease it also
// waits for the node's Lease to be renewed after the start.
func start(ctx context.Context, cfg Config, label string, prevHeartbeat time.Time, watchLease bool) (Start, error) {
	run := Start{Label: label}
	c := cfg.Cluster
	name := c.Node(cfg.Agent)
	logPath := c.Output(cfg.Agent)
	var offset int64
	if st, err := os.Stat(logPath); err == nil {
		offset = st.Size()
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.ReadyTimeout)
	defer cancel()
	started := make(chan error, 1)
	t0 := time.Now()
	// The script returns half a second after the exec; the node may be Ready before that.
	go func() {
		sctx, cancel := context.WithTimeout(pctx, time.Minute)
		defer cancel()
		started <- c.StartNode(sctx, name)
	}()
	var scriptDone bool
	for run.Ready == 0 || (watchLease && run.Lease == 0) {
		if !scriptDone {
			select {
			case err := <-started:
				if err != nil {
					return run, err
				}
				scriptDone = true
			default:
			}
		}
		at := time.Since(t0)
		if run.Ready == 0 {
			n, err := cfg.Client.CoreV1().Nodes().Get(pctx, name, metav1.GetOptions{})
			if err == nil && lifecycle.ReadySince(t0, prevHeartbeat)(n) {
				run.Ready = at
			} else if err != nil && !apierrors.IsNotFound(err) && pctx.Err() == nil {
				cfg.Logf("%s: get node: %v", label, err)
			}
		}
		if watchLease && run.Lease == 0 {
			l, err := cfg.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(pctx, name, metav1.GetOptions{})
			if err == nil && renewedSince(l, t0) {
				run.Lease = at
			}
		}
		if run.Ready > 0 && at > run.Ready+15*time.Second {
			return run, fmt.Errorf("%s: node Ready after %s, but its Lease was not renewed within 15 s more", label, report.Seconds(run.Ready))
		}
		select {
		case <-pctx.Done():
			if ctx.Err() != nil {
				return run, ctx.Err()
			}
			return run, fmt.Errorf("%s: %s not Ready %s after start; log tail:\n%s", label, name, cfg.ReadyTimeout, harness.Tail(logPath, 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
	if !scriptDone {
		if err := <-started; err != nil {
			return run, err
		}
	}
	// The agent prints its own "node Ready" line once it has seen the same; allow it a moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		run.Phases = phaseLines(readFrom(logPath, offset))
		if _, ok := run.Phase(harness.ReadyPhase); ok || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	var parts []string
	for _, p := range run.Phases {
		parts = append(parts, fmt.Sprintf("%s %.1fs", p.Name, p.Printed.Seconds()))
	}
	lease := ""
	if watchLease {
		lease = fmt.Sprintf(", Lease renewed after %s", report.Seconds(run.Lease))
	}
	cfg.Logf("%s: %s Ready after %s%s (agent's own clock: %s)", label, name, report.Seconds(run.Ready), lease, strings.Join(parts, ", "))
	return run, nil
}

// renewedSince is whether the Lease was renewed after t0 (renewTime has microseconds).
func renewedSince(l *coordinationv1.Lease, t0 time.Time) bool {
	return l.Spec.RenewTime != nil && l.Spec.RenewTime.Time.After(t0)
}

// phaseLines picks the agent's start-up lines out of its output.
func phaseLines(out string) []harness.PhaseTime {
	var phases []harness.PhaseTime
	for _, line := range strings.Split(out, "\n") {
		name, printed, ok := harness.ParsePhaseLine(line)
		if !ok {
			continue
		}
		if strings.HasPrefix(name, "joined ") {
			name = "joined"
		}
		if slices.Contains(Phases, name) {
			phases = append(phases, harness.PhaseTime{Name: name, Printed: printed})
		}
	}
	return phases
}

// notes are the agent's other `ketch:` lines in its latest run, such as host checks: the
// script starts each run's output with a "=== " line.
func notes(outPath string) []string {
	out := readFrom(outPath, 0)
	if k := strings.LastIndex(out, "\n=== "); k >= 0 {
		out = out[k+1:]
	}
	return harness.Notes(strings.Split(out, "\n"))
}

// deleteNode deletes a Node and waits until it is gone.
func deleteNode(ctx context.Context, cs kubernetes.Interface, name string) error {
	if err := cs.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete node %s: %w", name, err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
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

// emptyNode cordons the node and deletes the pods on it, which their controllers make again
// elsewhere, and waits until none is left, as `kubectl drain --force --disable-eviction` would;
// it returns how many it deleted. A DaemonSet's pod would come back to the node whatever it
// does: it is an error, before any deletion, since the node cannot be measured alone. The
// caller uncordons the node in any case.
func emptyNode(ctx context.Context, cs kubernetes.Interface, name string) (int, error) {
	deleted := 0
	h := drainHelper(ctx, cs)
	h.OnPodDeletionOrEvictionFinished = func(_ *corev1.Pod, _ bool, err error) {
		if err == nil {
			deleted++
		}
	}
	if err := cordon(h, name, true); err != nil {
		return 0, err
	}
	if err := drain.RunNodeDrain(h, name); err != nil {
		return 0, fmt.Errorf("node %s cannot be measured alone: %w", name, err)
	}
	return deleted, nil
}

// uncordon lets the scheduler use the node again.
func uncordon(ctx context.Context, cs kubernetes.Interface, name string) error {
	return cordon(drainHelper(ctx, cs), name, false)
}

func drainHelper(ctx context.Context, cs kubernetes.Interface) *drain.Helper {
	return &drain.Helper{
		Ctx: ctx, Client: cs, Force: true, DeleteEmptyDirData: true, DisableEviction: true,
		GracePeriodSeconds: -1, Timeout: 2 * time.Minute, Out: io.Discard, ErrOut: io.Discard,
	}
}

func cordon(h *drain.Helper, name string, unschedulable bool) error {
	node, err := h.Client.CoreV1().Nodes().Get(h.Ctx, name, metav1.GetOptions{})
	if err == nil {
		err = drain.RunCordonOrUncordon(h, node, unschedulable)
	}
	if err != nil {
		return fmt.Errorf("setting node %s unschedulable=%t: %w", name, unschedulable, err)
	}
	return nil
}

// readFrom is the file at path from offset on, empty if it cannot be read.
func readFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
