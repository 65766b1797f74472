package sections

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/bench/stats"
	"github.com/ketch-k8s/ketch/internal/harness"
)

// The targets for the loss of the leading server.
const (
	targetWritesBack  = 5 * time.Second
	targetControllers = 20 * time.Second
)

// HAKill is one kill -9 of the server whose kube-controller-manager leads (made the etcd leader
// too just before). Every duration counts from the kill; zero means not seen within the bench's
// limit.
type HAKill struct {
	Victim string // the node killed
	// EtcdLeader: the victim led etcd at the kill. SchedulerToo: it also held kube-scheduler's
	// lease.
	EtcdLeader, SchedulerToo bool
	// WritesBack is until the first acknowledgement of a write sent after the kill; WriteGap the
	// longest pause between two acknowledged writes, from the last one before the kill to the
	// end of the round; Writes the writes acknowledged in that time.
	WritesBack, WriteGap time.Duration
	Writes               int
	// Failed is the writer's attempts that failed after the kill, TimedOut those of them that
	// ran into the client timeout.
	Failed, TimedOut int
	// ProbeBack and ProbeGap are the same as WritesBack and WriteGap for a second writer with a
	// shorter client timeout, which sees an outage shorter than the writer's timeout.
	ProbeBack, ProbeGap time.Duration
	// LeaseTaken is until another server holds kube-controller-manager's lease.
	LeaseTaken time.Duration
	// PodsCreated and PodsScheduled are until the Deployment scaled right after the kill has
	// all its new pods, and all of them bound to a node.
	PodsCreated, PodsScheduled time.Duration
	// EndpointsGone and SliceGone are until the victim's address is gone from the kubernetes
	// Service's Endpoints and from its EndpointSlice (which the agents' load balancers watch).
	EndpointsGone, SliceGone time.Duration
	// Back is from `ketch-cluster.sh start` of the victim until its node is Ready by a heartbeat
	// of the new run, every etcd member is healthy and it is an endpoint again.
	Back time.Duration
}

// WriteStats sums up a writer's acknowledged writes around a kill: sent[i] is when the attempt
// acknowledged at acked[i] began. back is until the first acknowledgement of an attempt sent
// after the kill, gap the longest pause between acknowledgements from the last one before the
// kill, n the number acknowledged after it. back is zero when no write sent after the kill was
// acknowledged.
func WriteStats(sent, acked []time.Time, killed time.Time) (back, gap time.Duration, n int) {
	last := killed
	for i, at := range acked {
		if !at.After(killed) {
			last = at
			continue
		}
		n++
		gap = max(gap, at.Sub(last))
		last = at
		if back == 0 && sent[i].After(killed) {
			back = at.Sub(killed)
		}
	}
	return back, gap, n
}

// HAMemory is one idle server's memory.
type HAMemory struct {
	Node  string
	Store string // e.g. "bbolt, lone server"
	Mem   harness.NodeMemory
}

// HAPutRun is one run of the put workload.
type HAPutRun struct {
	Puts     int           // measured puts
	Window   time.Duration // from the first measured put's start to the last one's end
	P50, P99 time.Duration
}

// PerSecond is the measured puts over the window.
func (r HAPutRun) PerSecond() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Puts) / r.Window.Seconds()
}

// HAThroughput is the put workload's runs against one datastore.
type HAThroughput struct {
	Store    string // e.g. "bbolt (lone server)"
	Endpoint string
	Runs     []HAPutRun
}

// PerSecond is the median rate of the runs.
func (t HAThroughput) PerSecond() float64 {
	var v []float64
	for _, r := range t.Runs {
		v = append(v, r.PerSecond())
	}
	return stats.Median(v)
}

// P50 and P99 are the medians of the runs' latency percentiles.
func (t HAThroughput) P50() time.Duration {
	return stats.SpreadBy(t.Runs, func(r HAPutRun) (time.Duration, bool) { return r.P50, true }).Med
}
func (t HAThroughput) P99() time.Duration {
	return stats.SpreadBy(t.Runs, func(r HAPutRun) (time.Duration, bool) { return r.P99, true }).Med
}

// rateCell is "median (min–max)" puts/s, the rate alone for one run.
func (t HAThroughput) rateCell() string {
	if len(t.Runs) == 0 {
		return "—"
	}
	c := report.Commas(int(t.PerSecond() + 0.5))
	if len(t.Runs) > 1 {
		lo, hi := t.Runs[0].PerSecond(), t.Runs[0].PerSecond()
		for _, r := range t.Runs {
			lo, hi = min(lo, r.PerSecond()), max(hi, r.PerSecond())
		}
		c += fmt.Sprintf(" (%s–%s)", report.Commas(int(lo+0.5)), report.Commas(int(hi+0.5)))
	}
	return c
}

// HAResult is what `ketch-bench ha` measured.
type HAResult struct {
	Load, LoadEnd string // 1-minute load average before and after the run
	// Ups are `ketch-cluster.sh up --wait` of each cluster, in the order they ran.
	Ups []HAUp
	// Memory: the lone bbolt server, the lone embedded-etcd server, then the 3 servers of the
	// HA cluster.
	Memory []HAMemory
	Writes []HAThroughput
	Kills  []HAKill
}

// HAUp is one cluster's bring-up.
type HAUp struct {
	What string // e.g. "lone bbolt server (`up --nodes 1`)"
	Took time.Duration
}

// HA is a run of `ketch-bench ha`.
type HA struct {
	Quick    bool
	Args     []string // as given
	KetchBin string
	Idle     time.Duration // Ready → memory sample
	// The put workload: clients, puts per client (after a tenth as many unmeasured), value size,
	// and runs per store.
	PutClients, PutsPerClient, ValueSize, PutRuns int
	Limit                                         time.Duration // per observation of a kill
	// WriterTimeout and ProbeTimeout are the writers' client timeouts.
	WriterTimeout, ProbeTimeout time.Duration
	Machine                     report.Machine
	Result                      HAResult
	Elapsed                     time.Duration
	Date                        time.Time
}

// haStat is an observation over the kills: the spread of those seen, and how many were not.
type haStat struct {
	stats.Spread
	missing int
}

func killStat(kills []HAKill, f func(HAKill) time.Duration) haStat {
	s := haStat{Spread: stats.SpreadBy(kills, func(k HAKill) (time.Duration, bool) { d := f(k); return d, d > 0 })}
	s.missing = len(kills) - s.N
	return s
}

// cell is "median (min–max s)", with the kills that saw nothing within limit.
func (s haStat) cell(limit time.Duration) string {
	c := report.Spread(s.Spread)
	if s.missing > 0 {
		c += fmt.Sprintf(", %d not within %.0f s", s.missing, limit.Seconds())
	}
	return c
}

// verdict judges the worst kill; a kill that saw nothing within the limit misses.
func (s haStat) verdict(target time.Duration) string {
	if s.N == 0 || s.missing > 0 {
		return "**missed**"
	}
	return report.Verdict(float64(s.Max), float64(target))
}

// killCell is one kill's time, or "—" when not seen.
func killCell(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	return report.Seconds(d)
}

// memoryOf finds the memory row whose store starts with prefix; for several (the HA cluster's
// servers), the one with the median PSS of the ketch process.
func (r HA) memoryOf(prefix string) (HAMemory, []HAMemory, bool) {
	var rows []HAMemory
	for _, m := range r.Result.Memory {
		if strings.HasPrefix(m.Store, prefix) {
			rows = append(rows, m)
		}
	}
	if len(rows) == 0 {
		return HAMemory{}, nil, false
	}
	sorted := slices.Clone(rows)
	slices.SortStableFunc(sorted, func(a, b HAMemory) int {
		switch {
		case a.Mem.Ketch.PSS < b.Mem.Ketch.PSS:
			return -1
		case a.Mem.Ketch.PSS > b.Mem.Ketch.PSS:
			return 1
		}
		return 0
	})
	return sorted[(len(sorted)-1)/2], rows, true
}

func (r HA) writesOf(prefix string) (HAThroughput, bool) {
	for _, w := range r.Result.Writes {
		if strings.HasPrefix(w.Store, prefix) {
			return w, true
		}
	}
	return HAThroughput{}, false
}

// The stores' labels, which the bench uses and the summary looks up by prefix.
const (
	HAStoreBbolt    = "bbolt, lone server"
	HAStoreEtcd1    = "embedded etcd, 1 member, lone server"
	HAStoreEtcd3    = "embedded etcd, 3 members"
	HAWritesBbolt   = "bbolt (lone server)"
	HAWritesEtcd1   = "embedded etcd, 1 member (lone server)"
	HAWritesLeader  = "embedded etcd, 3 members, via the leader's member"
	HAWritesFollows = "embedded etcd, 3 members, via a follower's member"
)

// timeoutText is a timeout as "2 s" or "0.5 s".
func timeoutText(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s"
}

// mib is a byte count in MiB, for the summary's differences.
func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// moreOrLess is "12 MiB more" or "3 MiB less".
func moreOrLess(a, b uint64) string {
	if a >= b {
		return fmt.Sprintf("%.0f MiB more", mib(a)-mib(b))
	}
	return fmt.Sprintf("%.0f MiB less", mib(b)-mib(a))
}

// Section is the markdown that goes between the ha markers.
func (r HA) Section() string {
	res, m := r.Result, r.Machine
	var b strings.Builder
	b.WriteString("<a id=\"ha\"></a>\n\n")
	b.WriteString("## HA: failover, memory and write throughput per store\n\n")
	b.WriteString("_Generated by `tools/ketch-bench ha` (`make bench-ha`); everything between the ha markers is overwritten on each run._\n\n")
	if r.Quick {
		fmt.Fprintf(&b, "**Quick smoke run (`--quick`): %s, %.0f s idle, %s × %s; the numbers are not representative.**\n\n",
			report.Plural(len(res.Kills), "kill"), r.Idle.Seconds(), report.Plural(r.PutClients, "client"), report.Plural(r.PutsPerClient, "put"))
	}
	b.WriteString(report.RunLines("ha", r.Args, r.Date, r.Elapsed))
	fmt.Fprintf(&b, "- Machine: %s, %d cores, %s RAM, Linux %s; data dirs on %s; %s; etcd client %s; load average %s when the run started, %s when it ended\n",
		m.CPU, m.Cores, m.Memory, m.Kernel, m.Filesystem, m.GoVersion, m.ClientVersion, res.Load, res.LoadEnd)
	fmt.Fprintf(&b, "- ketch: `%s` (%s)\n", r.KetchBin, m.KetchBin)
	var ups []string
	for _, u := range res.Ups {
		ups = append(ups, fmt.Sprintf("%s, up and Ready in %s", u.What, report.Seconds(u.Took)))
	}
	fmt.Fprintf(&b, "- Clusters, one after the other, each node in its own network namespace on this one machine (`scripts/ketch-cluster.sh`), all sharing its %d cores: %s.\n\n", m.Cores, strings.Join(ups, "; "))

	// Failover.
	kills := res.Kills
	fmt.Fprintf(&b, "### Failover: kill -9 of the leading server (3 servers on embedded etcd, %s)\n\n", report.Plural(len(kills), "kill"))
	writes := killStat(kills, func(k HAKill) time.Duration { return k.WritesBack })
	gap := killStat(kills, func(k HAKill) time.Duration { return k.WriteGap })
	probe := killStat(kills, func(k HAKill) time.Duration { return k.ProbeBack })
	probeGap := killStat(kills, func(k HAKill) time.Duration { return k.ProbeGap })
	ctrl := killStat(kills, func(k HAKill) time.Duration { return k.PodsScheduled })
	lease := killStat(kills, func(k HAKill) time.Duration { return k.LeaseTaken })
	slice := killStat(kills, func(k HAKill) time.Duration { return k.SliceGone })
	eps := killStat(kills, func(k HAKill) time.Duration { return k.EndpointsGone })
	back := killStat(kills, func(k HAKill) time.Duration { return k.Back })
	b.WriteString("| after kill -9 of the server leading the controllers and etcd | median (min–max) | target (worst kill) | |\n")
	b.WriteString("| --- | ---: | ---: | --- |\n")
	fmt.Fprintf(&b, "| writes succeed again: first acknowledged write sent after the kill (%s client timeout) | %s | ≤ 5 s | %s |\n", timeoutText(r.WriterTimeout), writes.cell(r.Limit), writes.verdict(targetWritesBack))
	fmt.Fprintf(&b, "| longest pause between two acknowledged writes | %s | — | |\n", gap.cell(r.Limit))
	fmt.Fprintf(&b, "| … the same with a %s client timeout: writes again / longest pause | %s / %s | — | |\n", timeoutText(r.ProbeTimeout), probe.cell(r.Limit), probeGap.cell(r.Limit))
	fmt.Fprintf(&b, "| controllers act again: a Deployment scaled after the kill has all its new pods created and scheduled | %s | ≤ 20 s | %s |\n", ctrl.cell(r.Limit), ctrl.verdict(targetControllers))
	fmt.Fprintf(&b, "| … of which: another server holds kube-controller-manager's lease | %s | — | |\n", lease.cell(r.Limit))
	fmt.Fprintf(&b, "| the agents' load balancers drop the dead server from their list: its address gone from the `kubernetes` EndpointSlice | %s | — | |\n", slice.cell(r.Limit))
	fmt.Fprintf(&b, "| … and from the `kubernetes` Endpoints | %s | — | |\n", eps.cell(r.Limit))
	fmt.Fprintf(&b, "| after `start` of the killed server: its node Ready, 3 healthy etcd members, an endpoint again | %s | — | |\n", back.cell(r.Limit))

	b.WriteString("\nEach kill (seconds after the kill; `—`: not seen within the limit):\n\n")
	fmt.Fprintf(&b, "| # | server killed | it also led | writes again | longest pause | writes acknowledged | attempts failed (timed out) | %s probe: writes again / longest pause | KCM lease taken | pods created | pods scheduled | gone from EndpointSlice | from Endpoints | back after start |\n", timeoutText(r.ProbeTimeout))
	b.WriteString("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for i, k := range kills {
		led := []string{"controllers"}
		if k.EtcdLeader {
			led = append(led, "etcd")
		}
		if k.SchedulerToo {
			led = append(led, "scheduler")
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %d (%d) | %s / %s | %s | %s | %s | %s | %s | %s |\n", i+1, k.Victim, strings.Join(led, ", "),
			killCell(k.WritesBack), killCell(k.WriteGap), report.Commas(k.Writes), k.Failed, k.TimedOut, killCell(k.ProbeBack), killCell(k.ProbeGap),
			killCell(k.LeaseTaken), killCell(k.PodsCreated),
			killCell(k.PodsScheduled), killCell(k.SliceGone), killCell(k.EndpointsGone), killCell(k.Back))
	}

	// Memory.
	fmt.Fprintf(&b, "\n### Memory of an idle server (%.0f s after Ready)\n\n", r.Idle.Seconds())
	b.WriteString("| server | datastore | ketch process: PSS (anonymous, processes) | ketch process: RSS | whole node: PSS (ketch, shims, containers) |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: |\n")
	for _, mem := range res.Memory {
		total := mem.Mem.Total()
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s (%d pod processes) |\n", mem.Node, mem.Store, pssCell(mem.Mem.Ketch),
			report.Bytes(float64(mem.Mem.Ketch.RSS)), report.Bytes(float64(total.PSS)), mem.Mem.Containers.Procs)
	}

	// Writes.
	fmt.Fprintf(&b, "\n### Write throughput: %s × %s puts of %s values, %s per store\n\n", report.Plural(r.PutClients, "client"), report.Commas(r.PutsPerClient),
		report.Bytes(float64(r.ValueSize)), report.Plural(r.PutRuns, "run"))
	b.WriteString("| datastore | endpoint | puts/s, median (min–max) | latency p50 | p99 |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: |\n")
	for _, w := range res.Writes {
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s |\n", w.Store, w.Endpoint, w.rateCell(), report.Duration(w.P50()), report.Duration(w.P99()))
	}

	b.WriteString("\n### What each store costs, and which to pick\n\n")
	b.WriteString(r.summary())

	b.WriteString("\nHow it is measured:\n\n")
	fmt.Fprintf(&b, "- Failover: before each kill, the server whose kube-controller-manager holds the `kube-system/kube-controller-manager` lease (its holder identity starts with the node name) is made etcd's leader too (`MoveLeader`), so that one kill takes both. A writer creates ConfigMaps one after another from this machine, each through the next server in turn with a %s client timeout (the next server again after a failure, 50 ms later), as the HA e2e test does; a second writer (the probe) does the same with a %s timeout. 3 s after they start, the bench sends SIGKILL to the server's ketch process (the pid in `ketch-cluster.sh`'s pid file; every time counts from the signal), and `ketch-cluster.sh kill` makes sure it is gone; its containers and network namespace stay. Right after the kill the bench scales a Deployment made before it (0 replicas, pods pinned to the agent) to 3 replicas through a surviving server, retrying until the API takes it; the Deployment and ReplicaSet controllers (kube-controller-manager) then create the pods and kube-scheduler binds them. The bench polls every 100 ms through the surviving servers; each observation has %.0f s. \"Writes succeed again\" is the first acknowledgement of a write whose attempt began after the kill; the longest pause runs from the last acknowledgement before the kill to the end of the round. Most failed attempts are the dead server refusing the connection at once; the timed-out ones hung. A write in flight while etcd has no leader is not refused but waits, so a writer cannot see an outage shorter than its timeout once one of its attempts hangs: the probe's shorter timeout shows how long writes were really impossible, the writer's what a client with that timeout sees. The killed server is then started again, and the next kill takes whichever server leads then. kube-controller-manager and kube-scheduler elect their leader with upstream's defaults (a 15 s lease, renewed every 2 s): the dead leader's lease has to run out before another server takes it, and that sets most of the controllers' time.\n", timeoutText(r.WriterTimeout), timeoutText(r.ProbeTimeout), r.Limit.Seconds())
	b.WriteString("- The agents' load balancers (pkg/agent/loadbalancer) follow the `kubernetes` Service's EndpointSlice in `default`, which kube-apiserver's lease endpoint reconciler keeps (the Endpoints object too): a server that stops renewing its lease drops out after the lease's TTL and the next reconcile. Until then a load balancer still lists the dead server, but a connection to it fails and the balancer moves on to the next server at once, and tries servers that failed recently only after the others; here the dead server's network namespace stays and refuses connections at once, where a dead machine would leave each attempt to its 3 s dial timeout.\n")
	fmt.Fprintf(&b, "- Memory: Pss, Pss_Anon and Rss from /proc/PID/smaps_rollup of the ketch process and its descendants (the node's kube-apiserver, controllers, kubelet, containerd and datastore or etcd member all run in it), %.0f s after the cluster was up and Ready, before any load; the whole node adds its containerd's shims and the containers below them (the addon pods the node happens to run, so it is not comparable between a lone server, which runs all of them, and one of three). The lone servers ran alone on the machine; the three servers ran next to each other and an agent, so four ketch processes share the binary's pages and each one's PSS counts only a quarter of them: compare the anonymous part (heap, stacks, etcd's and the datastore's memory) and RSS across rows.\n", r.Idle.Seconds())
	fmt.Fprintf(&b, "- Writes: the bench's own etcd client (go.etcd.io/etcd/client/v3, one gRPC connection shared by the %s), each client putting distinct keys under `/bench/` one after another; %s unmeasured puts first. Throughput is the measured puts over the time from the first measured put's start to the last one's end, latency is per put; the table shows the median of the runs, which ran back to back (for three members, alternating between the two endpoints), and the latencies' medians over runs. The stores ran minutes apart, and this VM's disk and CPU speed drift by up to 2× from minute to minute (see the datastore section): only differences well beyond the runs' ranges are firm. bbolt is reached on the lone server's datastore socket (`<run-dir>/datastore.sock`, the one kube-apiserver uses), etcd on a member's client URL with the etcd client certificate of server 1 (TLS, over the namespaces' bridge). The keys are deleted afterwards. Each cluster's control plane ran (idle) meanwhile on the same cores; the three members, their servers and the agent share this machine's 2 cores and one disk (every member fsyncs its WAL to it), which three machines would not, where network round trips between the members come in instead.\n",
		report.Plural(r.PutClients, "client"), report.Commas(r.PutClients*r.PutsPerClient/10))
	return b.String()
}

// summary is the paragraph on what each store costs and when to pick which, from this run's
// numbers.
func (r HA) summary() string {
	var b strings.Builder
	bb, _, okB := r.memoryOf(HAStoreBbolt)
	e1, _, okE1 := r.memoryOf(HAStoreEtcd1)
	e3, _, okE3 := r.memoryOf(HAStoreEtcd3)
	wB, okWB := r.writesOf(HAWritesBbolt)
	wL, okWL := r.writesOf(HAWritesLeader)
	wF, okWF := r.writesOf(HAWritesFollows)
	writes := killStat(r.Result.Kills, func(k HAKill) time.Duration { return k.WritesBack })
	ctrl := killStat(r.Result.Kills, func(k HAKill) time.Duration { return k.PodsScheduled })

	b.WriteString("- **bbolt** (the default, one server): ")
	parts := []string{}
	if okB {
		least := ""
		if (!okE1 || bb.Mem.Ketch.Anon <= e1.Mem.Ketch.Anon) && (!okE3 || bb.Mem.Ketch.Anon <= e3.Mem.Ketch.Anon) {
			least = "the least memory: "
		}
		parts = append(parts, fmt.Sprintf("%s%s anonymous in the ketch process", least, report.Bytes(float64(bb.Mem.Ketch.Anon))))
	}
	if okWB {
		parts = append(parts, fmt.Sprintf("%s puts/s in this workload (p99 %s)", report.Commas(int(wB.PerSecond()+0.5)), report.Duration(wB.P99())))
	}
	b.WriteString(strings.Join(parts, ", "))
	b.WriteString(". No quorum to lose, but the server is the cluster: when it is down, so is the API (running pods keep running). Pick it for one server.\n")

	b.WriteString("- **Embedded etcd** (`--cluster-init`, then servers join with `--server`): ")
	parts = nil
	if okB && okE1 {
		parts = append(parts, fmt.Sprintf("a lone server on it holds %s of anonymous memory than on bbolt (%s against %s)",
			moreOrLess(e1.Mem.Ketch.Anon, bb.Mem.Ketch.Anon), report.Bytes(float64(e1.Mem.Ketch.Anon)), report.Bytes(float64(bb.Mem.Ketch.Anon))))
	}
	if okB && okE3 {
		parts = append(parts, fmt.Sprintf("each of three servers %s (%s)", moreOrLess(e3.Mem.Ketch.Anon, bb.Mem.Ketch.Anon), report.Bytes(float64(e3.Mem.Ketch.Anon))))
	}
	if w1, ok := r.writesOf(HAWritesEtcd1); ok && okWB && wB.PerSecond() > 0 {
		parts = append(parts, fmt.Sprintf("one member takes %.0f %% of bbolt's puts/s", 100*w1.PerSecond()/wB.PerSecond()))
	}
	if okWB && okWL && wB.PerSecond() > 0 {
		s := fmt.Sprintf("three members take %.0f %% of bbolt's puts/s through the leader's member", 100*wL.PerSecond()/wB.PerSecond())
		if okWF {
			s += fmt.Sprintf(" and %.0f %% through a follower's", 100*wF.PerSecond()/wB.PerSecond())
		}
		parts = append(parts, s+" (each put is replicated to a quorum and fsynced in etcd's WAL on each)")
	}
	if writes.N > 0 {
		s := fmt.Sprintf("in return the cluster survives losing a server: writes were back within %s of the kill (median %s; with a %s client timeout",
			report.Seconds(writes.Max), report.Seconds(writes.Med), timeoutText(r.WriterTimeout))
		if probe := killStat(r.Result.Kills, func(k HAKill) time.Duration { return k.ProbeBack }); probe.N > 0 {
			s += fmt.Sprintf(", %s with %s", report.Seconds(probe.Med), timeoutText(r.ProbeTimeout))
		}
		parts = append(parts, s+fmt.Sprintf(") and the controllers acted again within %s (median %s)", report.Seconds(ctrl.Max), report.Seconds(ctrl.Med)))
	}
	b.WriteString(strings.Join(parts, "; "))
	b.WriteString(". Pick it for three (or five) servers and nothing else to run; two servers are worse than one, since losing either stops the quorum.\n")
	b.WriteString("- **External etcd** (`--datastore-endpoint`, not measured here): the servers run no datastore at all, so each costs about what a bbolt server costs minus the datastore, and etcd's cost (as above, per member) lands on the machines that run it. Pick it when you already run an etcd cluster, or want the datastore on other machines than the control plane.\n")
	return b.String()
}
