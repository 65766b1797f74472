package main

import (
	"context"
	"fmt"
	"github.com/ketch-k8s/ketch/pkg/lifecycle"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// agentStart is one start of an agent, timed from just before `ketch-cluster.sh start`.
type agentStart struct {
	label  string
	ready  time.Duration // until the API shows the Node Ready, reported by this run's kubelet
	lease  time.Duration // until the API shows the node's Lease renewed by this run (warm only)
	stop   time.Duration // `ketch-cluster.sh stop` before this start: SIGTERM → exit
	clean  time.Duration // cold only: ketch-killall.sh for the node, Node deletion, data dir removal
	phases []phaseTime   // the agent's own start-up lines, printed = its own clock
}

func (a agentStart) phase(name string) (phaseTime, bool) {
	for _, p := range a.phases {
		if p.name == name {
			return p, true
		}
	}
	return phaseTime{}, false
}

// agentPhases are the agent's start-up lines, in order ("joined <server>" is shortened).
var agentPhases = []string{"joined", "node registered", readyPhase}

// agentMemory is the PSS and RSS of one agent's processes.
type agentMemory struct {
	agent, shims, containers          pssGroup
	agentRSS, shimsRSS, containersRSS uint64
	sinceStart                        time.Duration
}

func (m agentMemory) totalRSS() uint64 { return m.agentRSS + m.shimsRSS + m.containersRSS }

// agentPhase times cold joins and warm restarts of agent 3, then samples its idle memory.
func (c *mnCluster) agentPhase(ctx context.Context, res *mnResult) error {
	i := mnAgent
	name := c.node(i)
	// Cold: a machine that joins for the first time. The old node is stopped and cleaned up
	// like a host being wiped (ketch-killall.sh, data dir removed); its Node object is deleted,
	// which is what lets a new machine (a new node password) take the name.
	for r := range c.b.sizes.coldRuns {
		label := fmt.Sprintf("cold-%d", r+1)
		stopTook, err := c.stopAgent(ctx, i)
		if err != nil {
			return err
		}
		t0 := time.Now()
		if _, err := c.script(ctx, 2*time.Minute, []string{"KETCH_DATA_DIR=" + c.dataDir(i), "KETCH_RUN_DIR=" + c.runDir(i)},
			"exec", "--dir", c.dir, name, "bash", c.b.opts.killall); err != nil {
			return err
		}
		if err := hostClean(c.dirs(i)); err != nil {
			return err
		}
		if err := c.deleteNode(ctx, name); err != nil {
			return err
		}
		if err := removeDataDir(c.dataDir(i)); err != nil {
			return err
		}
		clean := time.Since(t0)
		run, err := c.startAgent(ctx, i, label, time.Time{}, false)
		if err != nil {
			return err
		}
		run.stop, run.clean = stopTook, clean
		res.cold = append(res.cold, run)
	}
	// Warm: the agent's service restarting on the same host, data dir and running containers
	// kept.
	for r := range c.b.sizes.warmRuns {
		label := fmt.Sprintf("warm-%d", r+1)
		stopTook, err := c.stopAgent(ctx, i)
		if err != nil {
			return err
		}
		n, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		_, hb := lifecycle.ReadyCondition(n)
		run, err := c.startAgent(ctx, i, label, hb, true)
		if err != nil {
			return err
		}
		run.stop = stopTook
		res.warm = append(res.warm, run)
	}
	res.agentOutput = c.agentNotes(i)

	pid, err := c.agentPID(i)
	if err != nil {
		return err
	}
	last := res.warm[len(res.warm)-1]
	wait := c.b.sizes.idle - last.ready
	c.b.logf("%s idle for %s before the memory sample", name, wait.Round(time.Second))
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(wait):
	}
	if res.idle, err = agentMem(pid, c.socket(i)); err != nil {
		return err
	}
	res.idle.sinceStart = c.b.sizes.idle
	c.b.logf("%s idle: PSS %s (anon %s), RSS %s; %d shims, %d containers", name, fmtBytes(float64(res.idle.total().pss)),
		fmtBytes(float64(res.idle.total().anon)), fmtBytes(float64(res.idle.totalRSS())), res.idle.shims.procs, res.idle.containers.procs)
	return nil
}

func (m agentMemory) total() pssGroup { return m.agent.plus(m.shims).plus(m.containers) }

// settle is the pause between an agent's Ready and its next stop: the agent has more to do
// after Ready (pod network, kube-proxy's first sync).
const settle = 3 * time.Second

func (c *mnCluster) stopAgent(ctx context.Context, i int) (time.Duration, error) {
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(settle):
	}
	t0 := time.Now()
	if _, err := c.script(ctx, 2*time.Minute, nil, "stop", "--dir", c.dir, c.node(i)); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// startAgent starts node i's agent and polls the API every 100 ms until the Node is Ready
// with a heartbeat of this run's kubelet: Ready, heartbeat not before the start (heartbeats
// have 1 s resolution) and after prevHeartbeat, the last one before the stop. With
// watchLease it also waits for the node's Lease to be renewed after the start.
func (c *mnCluster) startAgent(ctx context.Context, i int, label string, prevHeartbeat time.Time, watchLease bool) (agentStart, error) {
	run := agentStart{label: label}
	name := c.node(i)
	logPath := filepath.Join(c.nodeDir(i), "ketch.out")
	var offset int64
	if st, err := os.Stat(logPath); err == nil {
		offset = st.Size()
	}
	pctx, cancel := context.WithTimeout(ctx, c.b.sizes.readyTimeout)
	defer cancel()
	started := make(chan error, 1)
	t0 := time.Now()
	// The script returns half a second after the exec; the node may be Ready before that.
	go func() {
		_, err := c.script(pctx, time.Minute, nil, "start", "--dir", c.dir, name)
		started <- err
	}()
	var scriptDone bool
	for run.ready == 0 || (watchLease && run.lease == 0) {
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
		if run.ready == 0 {
			n, err := c.client.CoreV1().Nodes().Get(pctx, name, metav1.GetOptions{})
			if err == nil && lifecycle.ReadySince(t0, prevHeartbeat)(n) {
				run.ready = at
			} else if err != nil && !apierrors.IsNotFound(err) && pctx.Err() == nil {
				c.b.logf("%s: get node: %v", label, err)
			}
		}
		if watchLease && run.lease == 0 {
			l, err := c.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(pctx, name, metav1.GetOptions{})
			if err == nil && renewedSince(l, t0) {
				run.lease = at
			}
		}
		if run.ready > 0 && at > run.ready+15*time.Second {
			return run, fmt.Errorf("%s: node Ready after %s, but its Lease was not renewed within 15 s more", label, fmtSeconds(run.ready))
		}
		select {
		case <-pctx.Done():
			if ctx.Err() != nil {
				return run, ctx.Err()
			}
			return run, fmt.Errorf("%s: %s not Ready %s after start; log tail:\n%s", label, name, c.b.sizes.readyTimeout, tail(logPath, 30))
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
		run.phases = agentPhaseLines(readFrom(logPath, offset))
		if _, ok := run.phase(readyPhase); ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var parts []string
	for _, p := range run.phases {
		parts = append(parts, fmt.Sprintf("%s %.1fs", p.name, p.printed.Seconds()))
	}
	lease := ""
	if watchLease {
		lease = fmt.Sprintf(", Lease renewed after %s", fmtSeconds(run.lease))
	}
	c.b.logf("%s: %s Ready after %s%s (agent's own clock: %s)", label, name, fmtSeconds(run.ready), lease, strings.Join(parts, ", "))
	return run, nil
}

// renewedSince is whether the Lease was renewed after t0 (renewTime has microseconds).
func renewedSince(l *coordinationv1.Lease, t0 time.Time) bool {
	return l.Spec.RenewTime != nil && l.Spec.RenewTime.Time.After(t0)
}

// agentPhaseLines picks the agent's start-up lines out of its output.
func agentPhaseLines(out string) []phaseTime {
	var phases []phaseTime
	for _, line := range strings.Split(out, "\n") {
		name, printed, ok := parsePhaseLine(line)
		if !ok {
			continue
		}
		if strings.HasPrefix(name, "joined ") {
			name = "joined"
		}
		if slices.Contains(agentPhases, name) {
			phases = append(phases, phaseTime{name: name, printed: printed})
		}
	}
	return phases
}

// agentNotes are the agent's other `ketch:` lines in its latest run, such as host checks.
func (c *mnCluster) agentNotes(i int) []string {
	out := readFrom(filepath.Join(c.nodeDir(i), "ketch.out"), 0)
	if k := strings.LastIndex(out, "\n=== "); k >= 0 {
		out = out[k+1:]
	}
	var notes []string
	for _, l := range strings.Split(out, "\n") {
		if _, _, ok := parsePhaseLine(l); !ok && strings.HasPrefix(l, "ketch: ") && !slices.Contains(notes, l) {
			notes = append(notes, l)
		}
	}
	return notes
}

func (c *mnCluster) agentPID(i int) (int, error) {
	b, err := os.ReadFile(filepath.Join(c.nodeDir(i), "pid"))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s's pid file: %w", c.node(i), err)
	}
	return pid, nil
}

// agentMem sums the agent's memory like the server bench sums a node's: the agent and its
// descendants, its containerd's shims, and the containers below them.
func agentMem(pid int, socket string) (agentMemory, error) {
	procs, err := listProcs()
	if err != nil {
		return agentMemory{}, err
	}
	agent, shims, containers := nodeProcs(procs, pid, socket)
	var m agentMemory
	if m.agent = pssOf(agent[:1]); m.agent.procs != 1 {
		return m, fmt.Errorf("read the PSS of the agent (pid %d)", pid)
	}
	m.agent = m.agent.plus(pssOf(agent[1:]))
	m.shims, m.containers = pssOf(shims), pssOf(containers)
	m.agentRSS, m.shimsRSS, m.containersRSS = rssOf(agent), rssOf(shims), rssOf(containers)
	return m, nil
}

// rssOf sums the processes' Rss: every page they map, shared or not.
func rssOf(pids []int) uint64 {
	var rss uint64
	for _, p := range pids {
		if f, err := readKBFields(fmt.Sprintf("/proc/%d/smaps_rollup", p), "Rss:"); err == nil {
			rss += f["Rss:"]
		}
	}
	return rss
}

// removeDataDir removes a node's data dir once nothing is mounted below it (never remove
// through a mount: a volume may bind-mount the machine's files).
func removeDataDir(dir string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return err
	}
	if len(mounts) > 0 {
		return fmt.Errorf("%d mounts left below %s (first %s); not removing it", len(mounts), dir, mounts[0].Mountpoint)
	}
	return os.RemoveAll(dir)
}

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

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}
