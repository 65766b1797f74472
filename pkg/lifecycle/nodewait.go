package lifecycle

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/component"
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

// WaitNode waits until the node exists and satisfies ok, failing early if a component stops.
func WaitNode(ctx context.Context, client kubernetes.Interface, name string, components []*component.Component, ok func(*corev1.Node) bool) error {
	for {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil && ok(n) {
			return nil
		}
		for _, c := range components {
			select {
			case <-c.Done():
				return c.Stopped()
			default:
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// WaitAny waits until ctx ends (a clean stop) or a component stops (a failure).
func WaitAny(ctx context.Context, components []*component.Component) error {
	stopped := make(chan error, len(components))
	for _, c := range components {
		go func(c *component.Component) {
			select {
			case <-c.Done():
				stopped <- c.Stopped()
			case <-ctx.Done():
			}
		}(c)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-stopped:
		// The kubelet handles SIGTERM itself and may stop a moment before ctx ends.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
			return err
		}
	}
}

// WaitStopped waits for stopping components until deadline: a wedged one must not keep the
// process.
func WaitStopped(components []*component.Component, deadline time.Time, timeout time.Duration) {
	for _, c := range components {
		select {
		case <-c.Done():
			if err := c.Err(); err != nil && !errors.Is(err, context.Canceled) {
				klog.InfoS("Component stopped", "component", c.Name, "err", err)
			}
		case <-time.After(time.Until(deadline)):
			klog.InfoS("Component did not stop in time", "component", c.Name, "timeout", timeout)
			return
		}
	}
}
