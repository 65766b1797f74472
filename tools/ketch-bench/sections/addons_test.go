package sections

import (
	"strings"
	"testing"
	"time"

	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/tools/ketch-bench/addonpods"
	"github.com/ketch-k8s/ketch/tools/ketch-bench/dashbench"
)

func TestAddonsSection(t *testing.T) {
	run := func(label string, node time.Duration, addons ...time.Duration) AddonsRun {
		r := AddonsRun{Label: label, NodeReady: node, Addons: map[string]time.Duration{}}
		for i, role := range addonpods.Roles {
			r.Addons[role] = addons[i]
		}
		return r
	}
	var dns []time.Duration
	for i := range 1000 {
		dns = append(dns, time.Duration(1000-i)*time.Microsecond) // 1 µs … 1 ms, in reverse
	}
	mem := addonpods.Memory{
		"coredns":                {PSS: 20 << 20, Anon: 12 << 20, RSS: 40 << 20, Procs: 1},
		"metrics-server":         {PSS: 25 << 20, Anon: 15 << 20, RSS: 45 << 20, Procs: 1},
		"servicelb":              {PSS: 10 << 20, Anon: 6 << 20, RSS: 30 << 20, Procs: 1},
		"local-path-provisioner": {PSS: 9 << 20, Anon: 5 << 20, RSS: 29 << 20, Procs: 1},
		"dashboard":              {PSS: 8 << 20, Anon: 4 << 20, RSS: 25 << 20, Procs: 1},
		"local-path-helper":      {PSS: 1 << 20, Anon: 1 << 20, RSS: 20 << 20, Procs: 1},
	}
	res := AddonsResult{
		Runs: []AddonsRun{
			run("cold-1", 8*time.Second, 12*time.Second, 18*time.Second, 11*time.Second, 11500*time.Millisecond, 13*time.Second),
			run("cold-2", 7*time.Second, 11*time.Second, 16*time.Second, 10*time.Second, 10*time.Second, 12*time.Second),
			run("cold-3", 9*time.Second, 13*time.Second, 21*time.Second, 12*time.Second, 12*time.Second, 14*time.Second),
		},
		Memory: mem, MemoryAfter: time.Minute, DNS: dns, Load: "0.3", LoadEnd: "1.2",
		Dash: dashbench.Result{Created: 1000, Pods: 1006, ListBytes: 3 << 20,
			FirstByte: []time.Duration{30 * time.Millisecond, 40 * time.Millisecond, 250 * time.Millisecond},
			Whole:     []time.Duration{90 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond},
			Visible:   []time.Duration{50 * time.Millisecond, 80 * time.Millisecond}},
	}
	for i := range res.Runs {
		res.Runs[i].Dashboard = time.Duration(14+i) * time.Second
	}
	// The sizes of a full run.
	r := Addons{KetchBin: "/x/bin/ketch", NodeName: "ketch-bench", Runs: 3, Idle: time.Minute, Result: res, Elapsed: 4 * time.Minute, Date: time.Unix(0, 0)}
	s := r.Section()
	for _, want := range []string{
		"| exec → all 5 addon Deployments available, cold (median of 3, min–max) | 18.00 s (16.00–21.00 s) | ≤ 15 s | **missed** |",
		"| for context: exec → node Ready, same runs | 8.00 s (7.00–9.00 s) | — | |",
		"| addon memory, PSS of all addon pods' processes, idle | 73 MiB (76.5 MB) | < 100 MB | met |",
		"| dashboard: exec → `/dashboard/` answering through the front door, cold (median of 3, min–max) | 15.00 s (14.00–16.00 s) | — | |",
		"| dashboard pod memory, PSS, idle | 8 MiB (8.4 MB) | ≤ 20 MiB | met |",
		"| dashboard pod list with 1,006 pods in the cluster: first byte, p95 (3 requests) | 250 ms | ≤ 200 ms | **missed** |",
		"| dashboard: a new pod shown in the open pod list, p95 (2 pods) | 80.0 ms | ≤ 1 s | met |",
		"| new pod created → its row in the open list | 2 | 50.0 ms | 80.0 ms | 80.0 ms |",
		"| DNS lookup from a pod through the cluster DNS, p99 (1,000 lookups) | 0.990 ms | < 5 ms | met |",
		"| run | node Ready | coredns | metrics-server | servicelb | local-path-provisioner | dashboard | all available |",
		"| cold-3 | 9.00 s | 13.00 s | 21.00 s | 12.00 s | 12.00 s | 14.00 s | 21.00 s |",
		"| median | 8.00 s | 12.00 s | 18.00 s | 11.00 s | 11.50 s | 13.00 s | 18.00 s |",
		"| coredns | 20 MiB | 12 MiB | 8 MiB | 40 MiB | 1 |",
		// A role outside the four, running at the time, is shown after them and counted.
		"| local-path-provisioner | 9 MiB | 5 MiB | 4 MiB | 29 MiB | 1 |\n| dashboard | 8 MiB | 4 MiB | 4 MiB | 25 MiB | 1 |\n| local-path-helper | 1 MiB | 1 MiB | 0 B | 20 MiB | 1 |\n| total | 73 MiB | 43 MiB | 30 MiB | 189 MiB | 6 |",
		"| `kubernetes.default.svc.cluster.local.` | 1,000 | 0.500 ms | 0.900 ms | 0.990 ms | 1.00 ms |",
		"load average 0.3 when the run started, 1.2 when it ended",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "Quick smoke run") {
		t.Error("a full run is labelled quick")
	}

	// Missed targets.
	res.Memory["coredns"] = harness.MemGroup{PSS: 60 << 20, Anon: 50 << 20, RSS: 40 << 20, Procs: 1}
	res.DNS = []time.Duration{6 * time.Millisecond}
	res.Runs = res.Runs[:1]
	res.Runs[0].Addons["servicelb"] = 25 * time.Second
	// The sizes of a quick run.
	r.Result, r.Quick, r.Runs, r.Idle = res, true, 2, 20*time.Second
	s = r.Section()
	for _, want := range []string{
		"| exec → all 5 addon Deployments available, cold (median of 1, min–max) | 25.00 s | ≤ 15 s | **missed** |",
		"| addon memory, PSS of all addon pods' processes, idle | 113 MiB (118.5 MB) | < 100 MB | **missed** |",
		"| DNS lookup from a pod through the cluster DNS, p99 (1 lookup) | 6.00 ms | < 5 ms | **missed** |",
		"**Quick smoke run (`--quick`): 2 cold starts, 20 s idle",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "| median |") {
		t.Error("a single run has a median row")
	}
}
