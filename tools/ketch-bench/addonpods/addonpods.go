// Package addonpods is what `ketch-bench addons` measures of the bundled addons' pods: when
// each addon Deployment becomes available after the server's exec, and what the addon
// processes cost in memory.
package addonpods

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

	"github.com/ketch-k8s/ketch/internal/harness"
)

// Roles are the addons' roles, the argv[1] their pods give Program; each runs as the Deployment
// in Namespace that Deployment names.
var Roles = []string{"coredns", "metrics-server", "servicelb", "local-path-provisioner", "dashboard"}

// Deployment is the Deployment of an addon role: its own name, but the dashboard's, which is
// named for its Service (ketch-dashboard.kube-system.svc, the name of its certificate).
func Deployment(role string) string {
	if role == "dashboard" {
		return "ketch-dashboard"
	}
	return role
}

const (
	// Namespace holds the addon Deployments.
	Namespace = "kube-system"
	// Program is the addon image's entrypoint, argv[0] of every addon pod's process.
	Program = "/ketch-addons"
)

// Wait polls the addon Deployments every 100 ms until each is available and returns, per
// Deployment, the time from the server's exec to the first poll that showed it so. timeout
// counts from the exec too.
func Wait(ctx context.Context, cs kubernetes.Interface, srv *harness.Server, timeout time.Duration, logf func(string, ...any)) (map[string]time.Duration, error) {
	pctx, cancel := context.WithTimeout(ctx, timeout-time.Since(srv.Started))
	defer cancel()
	ready := map[string]time.Duration{}
	var last []appsv1.Deployment
	for {
		list, err := cs.AppsV1().Deployments(Namespace).List(pctx, metav1.ListOptions{})
		at := time.Since(srv.Started)
		if err == nil {
			last = list.Items
			for _, d := range list.Items {
				for _, role := range Roles {
					if _, seen := ready[role]; !seen && Deployment(role) == d.Name && Available(&d) {
						ready[role] = at
					}
				}
			}
		} else if pctx.Err() == nil {
			logf("list deployments: %v", err)
		}
		if len(ready) == len(Roles) {
			return ready, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-srv.Done():
			return nil, srv.ExitError()
		case <-pctx.Done():
			return nil, fmt.Errorf("addons not available %s after exec: %s; %s pods: %s; log tail:\n%s", timeout,
				pending(last, ready), Namespace, harness.PodSummary(ctx, cs, Namespace), srv.LogTail(40))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Available is whether the Deployment's controller has seen its latest spec and reports it
// Available with every replica updated, ready and available, and no old one left.
func Available(d *appsv1.Deployment) bool {
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

// pending describes the addon Deployments not yet available, for error messages.
func pending(deployments []appsv1.Deployment, ready map[string]time.Duration) string {
	var parts []string
	for _, role := range Roles {
		if _, ok := ready[role]; ok {
			continue
		}
		name := Deployment(role)
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
