package harness

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// WaitServiceAccount waits for a new namespace's default service account: the API refuses
// pods until it exists.
func WaitServiceAccount(ctx context.Context, cs kubernetes.Interface, namespace string) error {
	for {
		_, err := cs.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		} else if !apierrors.IsNotFound(err) {
			return fmt.Errorf("wait for the default service account of %s: %w", namespace, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the default service account of %s: %w", namespace, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// PodSummary counts a namespace's pods by phase, for error messages.
func PodSummary(ctx context.Context, cs kubernetes.Interface, ns string) string {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	list, err := cs.CoreV1().Pods(ns).List(cctx, metav1.ListOptions{})
	if err != nil {
		return "(list: " + err.Error() + ")"
	}
	phases := map[corev1.PodPhase]int{}
	var example string
	for _, p := range list.Items {
		phases[p.Status.Phase]++
		if p.Status.Phase != corev1.PodRunning && example == "" {
			for _, cs := range p.Status.ContainerStatuses {
				if w := cs.State.Waiting; w != nil {
					example = fmt.Sprintf("; %s waiting: %s %s", p.Name, w.Reason, w.Message)
				}
			}
		}
	}
	return fmt.Sprintf("%v%s", phases, example)
}
