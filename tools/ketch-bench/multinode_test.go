package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRenewedSince(t *testing.T) {
	t0 := time.Now()
	lease := func(at time.Time) *coordinationv1.Lease {
		mt := metav1.NewMicroTime(at)
		return &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{RenewTime: &mt}}
	}
	if !renewedSince(lease(t0.Add(time.Millisecond)), t0) {
		t.Error("a renewal after the start is not seen")
	}
	if renewedSince(lease(t0.Add(-time.Millisecond)), t0) || renewedSince(&coordinationv1.Lease{}, t0) {
		t.Error("an earlier or missing renewal counts")
	}
}

func TestAgentPhaseLines(t *testing.T) {
	out := strings.Join([]string{
		"=== 2026-11-22T05:16:07+00:00 ketch-cluster.sh: starting kbx-3",
		"ketch: modprobe not found: relying on kernel features being built in or already loaded",
		fmt.Sprintf("ketch: %-28s %6.1fs", "joined https://10.99.91.11:6443", 1.3),
		"ketch: waiting for the server at https://10.99.91.11:6443: the server refused (HTTP 503)",
		fmt.Sprintf("ketch: %-28s %6.1fs", "node registered", 5.6),
		fmt.Sprintf("ketch: %-28s %6.1fs", "node Ready", 11.3),
	}, "\n")
	got := agentPhaseLines(out)
	want := []phaseTime{{name: "joined", printed: 1300 * time.Millisecond}, {name: "node registered", printed: 5600 * time.Millisecond}, {name: readyPhase, printed: 11300 * time.Millisecond}}
	if len(got) != len(want) {
		t.Fatalf("phases %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].name != want[i].name || got[i].printed.Round(time.Millisecond) != want[i].printed {
			t.Errorf("phase %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestMedianAndRatio(t *testing.T) {
	if got := medianF([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median of 3: %v", got)
	}
	if got := medianF([]float64{4, 2}); got != 2 {
		t.Errorf("median of 2 (lower middle): %v", got)
	}
	if medianF(nil) != 0 {
		t.Error("median of nothing")
	}
	n := netResult{same: netPath{streams: []float64{10, 12, 11}}, cross: netPath{streams: []float64{8, 9, 7}}}
	if got := n.ratio(); got < 0.727 || got > 0.728 {
		t.Errorf("ratio %v, want 8/11", got)
	}
}

func TestMultinodeSection(t *testing.T) {
	start := func(ready time.Duration) agentStart {
		return agentStart{ready: ready, lease: ready / 2, stop: 100 * time.Millisecond,
			phases: []phaseTime{{name: "joined", printed: 0}, {name: "node registered", printed: ready / 2}, {name: readyPhase, printed: ready - 100*time.Millisecond}}}
	}
	path := func(pod string, gbit ...float64) netPath {
		p := netPath{pod: pod, node: pod, mtu: 1450}
		for _, g := range gbit {
			p.streams = append(p.streams, g*1e9/8)
			p.rrP50 = append(p.rrP50, 30*time.Microsecond)
			p.rrP99 = append(p.rrP99, 90*time.Microsecond)
		}
		return p
	}
	res := mnResult{
		load: "0.5", clusterUps: map[string]time.Duration{"vxlan": 12 * time.Second, "host-gw": 13 * time.Second},
		cold: []agentStart{start(2700 * time.Millisecond), start(2600 * time.Millisecond), start(2900 * time.Millisecond)},
		warm: []agentStart{start(time.Second), start(1100 * time.Millisecond), start(900 * time.Millisecond)},
		idle: agentMemory{agent: pssGroup{pss: 80 << 20, anon: 30 << 20, procs: 1}, agentRSS: 170 << 20, sinceStart: time.Minute},
		nets: []netResult{
			{backend: "vxlan", same: path("nb-same", 10, 9, 11), cross: path("nb-cross", 8, 7.5, 8.5)},
			{backend: "host-gw", same: path("nb-same", 10, 9, 11), cross: path("nb-cross", 9.9, 9.5, 10)},
		},
	}
	r := mnReport{opts: mnOptions{ketchBin: "/x/bin/ketch"}, sizes: defaultMNSizes(false), res: res, elapsed: 5 * time.Minute, date: time.Unix(0, 0)}
	s := r.section()
	for _, want := range []string{
		"| agent start → node Ready, cold join (median of 3, min–max) | 2.70 s (2.60–2.90 s) | — | |",
		"| agent start → node Ready, warm restart (median of 3, min–max) | 1.00 s (0.90–1.10 s) | — | |",
		"| agent idle memory, PSS of its processes | 80 MiB | < 150 MB | met |",
		"| agent idle memory alone on its host (RSS of its processes) | 170 MiB | < 150 MB | **missed** |",
		"| pod-to-pod TCP stream, vxlan cross-node / same-node | 80 % | ≥ 80 % | met |",
		"| vxlan | other node (nb-cross) | 1450 | 8.00 Gbit/s (1,000 MB/s) (7.50–8.50) | 30 µs | 90 µs | 80 % (77–83 %) |",
		"| host-gw | other node (nb-cross) | 1450 | 9.90 Gbit/s (1,238 MB/s) (9.50–10.00) | 30 µs | 90 µs | 99 % (91–106 %) |",
		"| API shows the node's Lease renewed by this run | — | 0.50 s (0.45–0.55 s) |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "Quick smoke run") {
		t.Error("a full run is labelled quick")
	}
}
