package lifecycle

import (
	"context"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Registered is any Node that exists.
func Registered(*corev1.Node) bool { return true }

// ReadyCondition is the node's Ready status and that condition's last heartbeat.
func ReadyCondition(n *corev1.Node) (corev1.ConditionStatus, time.Time) {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status, c.LastHeartbeatTime.Time
		}
	}
	return corev1.ConditionUnknown, time.Time{}
}

// LastHeartbeat is the node's Ready heartbeat as it is now, or zero if there is no such Node.
func LastHeartbeat(ctx context.Context, client kubernetes.Interface, name string) time.Time {
	n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return time.Time{}
	}
	_, hb := ReadyCondition(n)
	return hb
}

// ReadySince is whether the node is Ready by a heartbeat of a kubelet started at start: after
// a restart the Node still carries the previous run's Ready condition until the new kubelet's
// first report. Heartbeats are kept to the second, so one in start's second counts, unless it is
// previous, the heartbeat the Node had before this start.
func ReadySince(start, previous time.Time) func(*corev1.Node) bool {
	return func(n *corev1.Node) bool {
		status, hb := ReadyCondition(n)
		return status == corev1.ConditionTrue && !hb.Before(start.Truncate(time.Second)) && hb.After(previous)
	}
}

// NotReadyWhy is what the node's Ready condition says when it is not True (the kubelet's reason
// and message, "container runtime network not ready: …" say), or "".
func NotReadyWhy(n *corev1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
			return strings.TrimSpace(c.Reason + ": " + c.Message)
		}
	}
	return ""
}

// waitNode waits until the node exists and satisfies ok, or ctx ends (with its cause: a
// component that failed, or the user's stop). why is told, each time the node is seen and is
// not there yet, what its Ready condition says.
func waitNode(ctx context.Context, client kubernetes.Interface, name string, ok func(*corev1.Node) bool, why func(string)) error {
	for {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil && ok(n) {
			return nil
		}
		if err == nil {
			why(NotReadyWhy(n))
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
