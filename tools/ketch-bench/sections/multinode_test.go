package sections

import (
	"strings"
	"testing"
	"time"

	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/tools/ketch-bench/agentstart"
	"github.com/ketch-k8s/ketch/tools/ketch-bench/podnet"
)

func TestMultinodeSection(t *testing.T) {
	start := func(ready time.Duration) agentstart.Start {
		return agentstart.Start{Ready: ready, Lease: ready / 2, Stop: 100 * time.Millisecond,
			Phases: []harness.PhaseTime{{Name: "joined", Printed: 0}, {Name: "node registered", Printed: ready / 2}, {Name: harness.ReadyPhase, Printed: ready - 100*time.Millisecond}}}
	}
	path := func(pod string, gbit ...float64) podnet.Path {
		p := podnet.Path{Pod: pod, Node: pod, MTU: 1450}
		for _, g := range gbit {
			p.Streams = append(p.Streams, g*1e9/8)
			p.RRP50 = append(p.RRP50, 30*time.Microsecond)
			p.RRP99 = append(p.RRP99, 90*time.Microsecond)
		}
		return p
	}
	res := MultinodeResult{
		Load: "0.5", ClusterUps: map[string]time.Duration{"vxlan": 12 * time.Second, "host-gw": 13 * time.Second},
		Agent: agentstart.Result{
			Cold:      []agentstart.Start{start(2700 * time.Millisecond), start(2600 * time.Millisecond), start(2900 * time.Millisecond)},
			Warm:      []agentstart.Start{start(time.Second), start(1100 * time.Millisecond), start(900 * time.Millisecond)},
			Idle:      harness.NodeMemory{Ketch: harness.MemGroup{PSS: 80 << 20, Anon: 30 << 20, RSS: 170 << 20, Procs: 1}},
			IdleAfter: time.Minute,
		},
		Nets: []podnet.Result{
			{Backend: "vxlan", Same: path("nb-same", 10, 9, 11), Cross: path("nb-cross", 8, 7.5, 8.5)},
			{Backend: "host-gw", Same: path("nb-same", 10, 9, 11), Cross: path("nb-cross", 9.9, 9.5, 10)},
		},
	}
	// The sizes of a full run.
	r := Multinode{KetchBin: "/x/bin/ketch", ColdRuns: 3, WarmRuns: 3, Idle: time.Minute, StreamRuns: 5, StreamSecs: 6, RRCount: 10000,
		Backends: []string{"vxlan", "host-gw"}, Nodes: 3, Agent: 3, NetServer: 2,
		Result: res, Elapsed: 5 * time.Minute, Date: time.Unix(0, 0)}
	s := r.Section()
	for _, want := range []string{
		"| agent start → node Ready, cold join (median of 3, min–max) | 2.70 s (2.60–2.90 s) | — | |",
		"| agent start → node Ready, warm restart (median of 3, min–max) | 1.00 s (0.90–1.10 s) | — | |",
		"| agent idle memory, PSS of its processes | 80 MiB | ≤ 100 MiB | met |",
		"| agent idle memory alone on its host (RSS of its processes) | 170 MiB | ≤ 100 MiB | **missed** |",
		"| pod-to-pod TCP stream, vxlan cross-node / same-node | 80 % | ≥ 80 % | met |",
		"| vxlan | other node (nb-cross) | 1450 | 8.00 Gbit/s (1,000 MB/s) (7.50–8.50) | 30 µs | 90 µs | 80 % (77–83 %) |",
		"| host-gw | other node (nb-cross) | 1450 | 9.90 Gbit/s (1,238 MB/s) (9.50–10.00) | 30 µs | 90 µs | 99 % (91–106 %) |",
		"| API shows the node's Lease renewed by this run | — | 0.50 s (0.45–0.55 s) |",
		"`up` until all nodes Ready: vxlan 12.00 s, host-gw 13.00 s.",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "Quick smoke run") {
		t.Error("a full run is labelled quick")
	}
}
