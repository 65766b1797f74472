package agentstart

import (
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ketch-k8s/ketch/internal/harness"
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

func TestPhaseLines(t *testing.T) {
	out := strings.Join([]string{
		"=== 2026-11-22T05:16:07+00:00 ketch-cluster.sh: starting kbx-3",
		"ketch: modprobe not found: relying on kernel features being built in or already loaded",
		fmt.Sprintf("ketch: %-28s %6.1fs", "joined https://10.99.91.11:6443", 1.3),
		"ketch: waiting for the server at https://10.99.91.11:6443: the server refused (HTTP 503)",
		fmt.Sprintf("ketch: %-28s %6.1fs", "node registered", 5.6),
		fmt.Sprintf("ketch: %-28s %6.1fs", "node Ready", 11.3),
	}, "\n")
	got := phaseLines(out)
	want := []harness.PhaseTime{{Name: "joined", Printed: 1300 * time.Millisecond}, {Name: "node registered", Printed: 5600 * time.Millisecond}, {Name: harness.ReadyPhase, Printed: 11300 * time.Millisecond}}
	if len(got) != len(want) {
		t.Fatalf("phases %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Name != want[i].Name || got[i].Printed.Round(time.Millisecond) != want[i].Printed {
			t.Errorf("phase %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
