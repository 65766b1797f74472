package lifecycle

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func nodeWithReady(status corev1.ConditionStatus, heartbeat time.Time) *corev1.Node {
	return &corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, LastHeartbeatTime: metav1.NewTime(heartbeat.Add(time.Hour))},
		{Type: corev1.NodeReady, Status: status, LastHeartbeatTime: metav1.NewTime(heartbeat)},
	}}}
}

func TestReadySince(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 5, 0, 10, 700e6, time.UTC)
	prev := time.Date(2026, 11, 22, 5, 0, 10, 0, time.UTC) // the previous run, same second as t0
	for _, tc := range []struct {
		name   string
		node   *corev1.Node
		prev   time.Time
		expect bool
	}{
		{"new heartbeat in the start's second (kept to the second)", nodeWithReady(corev1.ConditionTrue, t0.Truncate(time.Second)), time.Time{}, true},
		{"new heartbeat later", nodeWithReady(corev1.ConditionTrue, t0.Add(2*time.Second)), prev, true},
		{"heartbeat before the start", nodeWithReady(corev1.ConditionTrue, t0.Add(-2*time.Second)), time.Time{}, false},
		{"the previous run's heartbeat in the start's second", nodeWithReady(corev1.ConditionTrue, prev), prev, false},
		{"not Ready", nodeWithReady(corev1.ConditionFalse, t0.Add(time.Second)), time.Time{}, false},
		{"no conditions", &corev1.Node{}, time.Time{}, false},
	} {
		if got := ReadySince(t0, tc.prev)(tc.node); got != tc.expect {
			t.Errorf("%s: readySince = %v, want %v", tc.name, got, tc.expect)
		}
	}
}

func TestNotReadyWhy(t *testing.T) {
	n := nodeWithReady(corev1.ConditionFalse, time.Now())
	n.Status.Conditions[1].Reason = "KubeletNotReady"
	n.Status.Conditions[1].Message = "container runtime network not ready: NetworkReady=false"
	if got, want := NotReadyWhy(n), "KubeletNotReady: container runtime network not ready: NetworkReady=false"; got != want {
		t.Errorf("NotReadyWhy = %q, want %q", got, want)
	}
	if got := NotReadyWhy(nodeWithReady(corev1.ConditionTrue, time.Now())); got != "" {
		t.Errorf("a Ready node: NotReadyWhy = %q, want none", got)
	}
	if got := NotReadyWhy(&corev1.Node{}); got != "" {
		t.Errorf("no conditions: NotReadyWhy = %q, want none", got)
	}
}
