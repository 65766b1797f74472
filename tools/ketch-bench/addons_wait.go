package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// waitAddons polls the addon Deployments every 100 ms until each is available and returns,
// per Deployment, the time from the node's exec to the first poll that showed it so.
func (b *addonsBench) waitAddons(ctx context.Context, cs kubernetes.Interface) (map[string]time.Duration, error) {
	n := b.srv.node
	pctx, cancel := context.WithTimeout(ctx, b.sizes.addonsTimeout-time.Since(n.start))
	defer cancel()
	ready := map[string]time.Duration{}
	var last []appsv1.Deployment
	for {
		list, err := cs.AppsV1().Deployments(addonsNamespace).List(pctx, metav1.ListOptions{})
		at := time.Since(n.start)
		if err == nil {
			last = list.Items
			for _, d := range list.Items {
				if _, seen := ready[d.Name]; !seen && slices.Contains(addonRoles, d.Name) && deploymentAvailable(&d) {
					ready[d.Name] = at
				}
			}
		} else if pctx.Err() == nil {
			b.logf("list deployments: %v", err)
		}
		if len(ready) == len(addonRoles) {
			return ready, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-n.done:
			return nil, n.exitError()
		case <-pctx.Done():
			return nil, fmt.Errorf("addons not available %s after exec: %s; %s pods: %s; log tail:\n%s", b.sizes.addonsTimeout,
				addonsPending(last, ready), addonsNamespace, podSummary(ctx, cs, addonsNamespace), n.logTail(40))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// deploymentAvailable is whether the Deployment's controller has seen its latest spec and
// reports it Available with every replica updated, ready and available, and no old one left.
func deploymentAvailable(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	if st.ObservedGeneration < d.Generation || st.Replicas != want || st.UpdatedReplicas != want ||
		st.ReadyReplicas != want || st.AvailableReplicas != want {
		return false
	}
	for _, c := range st.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// addonsPending describes the addon Deployments not yet available, for error messages.
func addonsPending(deployments []appsv1.Deployment, ready map[string]time.Duration) string {
	var parts []string
	for _, name := range addonRoles {
		if _, ok := ready[name]; ok {
			continue
		}
		i := slices.IndexFunc(deployments, func(d appsv1.Deployment) bool { return d.Name == name })
		if i < 0 {
			parts = append(parts, name+" does not exist")
			continue
		}
		st := deployments[i].Status
		parts = append(parts, fmt.Sprintf("%s %d/%d ready", name, st.ReadyReplicas, st.Replicas))
	}
	return strings.Join(parts, ", ")
}
