package dashboard

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func sample(t *testing.T, js string) *metricsList {
	t.Helper()
	var l metricsList
	if err := json.Unmarshal([]byte(js), &l); err != nil {
		t.Fatal(err)
	}
	return &l
}

// TestHistory: samples line up by time, a pod that comes later has no values before it, the
// oldest samples beyond the span go, and so does a pod with no value left in the span.
func TestHistory(t *testing.T) {
	h := newHistory(10*time.Second, 30*time.Second) // 3 samples
	t0 := time.Unix(1000, 0)
	nodes := sample(t, `{"items":[{"metadata":{"name":"n1"},"usage":{"cpu":"250m","memory":"1Gi"}}]}`)
	podA := sample(t, `{"items":[{"metadata":{"name":"a","namespace":"ns"},"containers":[{"usage":{"cpu":"10m","memory":"10Mi"}},{"usage":{"cpu":"5m","memory":"6Mi"}}]}]}`)
	podB := sample(t, `{"items":[{"metadata":{"name":"b","namespace":"ns"},"containers":[{"usage":{"cpu":"1","memory":"1Mi"}}]}]}`)
	h.add(t0, nodes, podA)
	h.add(t0.Add(10*time.Second), nodes, podB)
	snap := h.snapshot(true, true)
	if len(snap.Times) != 2 || snap.Times[1] != 1010 {
		t.Fatalf("times %v", snap.Times)
	}
	if n := snap.Nodes["n1"]; len(n.CPU) != 2 || *n.CPU[0] != 0.25 || *n.Memory[1] != 1<<30 {
		t.Errorf("node n1: %+v", n)
	}
	a, b := snap.Pods["ns/a"], snap.Pods["ns/b"]
	if len(a.Memory) != 2 || *a.Memory[0] != 16<<20 || a.Memory[1] != nil || math.Abs(float64(*a.CPU[0])-0.015) > 1e-6 {
		t.Errorf("pod a (summed over containers, none in the second sample): cpu %v memory %v", a.CPU, a.Memory)
	}
	if len(b.Memory) != 2 || b.Memory[0] != nil || *b.Memory[1] != 1<<20 {
		t.Errorf("pod b (from the second sample): %v", b.Memory)
	}
	h.add(t0.Add(20*time.Second), nodes, podB)
	h.add(t0.Add(30*time.Second), nodes, podB)
	snap = h.snapshot(true, false)
	if len(snap.Times) != 3 || snap.Times[0] != 1010 || len(snap.Nodes["n1"].CPU) != 3 {
		t.Errorf("after the span: times %v, n1 %d values", snap.Times, len(snap.Nodes["n1"].CPU))
	}
	if len(snap.Pods) != 0 {
		t.Errorf("pods given to someone who may not read them: %v", snap.Pods)
	}
	snap = h.snapshot(false, true)
	if _, ok := snap.Pods["ns/a"]; ok {
		t.Error("pod a, with no value left in the span, is still kept")
	}
	if len(snap.Nodes) != 0 {
		t.Errorf("nodes given to someone who may not read them")
	}
}
