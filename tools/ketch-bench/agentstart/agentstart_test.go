package agentstart

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/internal/testutil/apiserver"
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

func TestEmptyNode(t *testing.T) {
	ctx := context.Background()
	cs := apiserver.Start(t).Client
	for _, n := range []string{"measured", "other"} {
		if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// No kube-controller-manager makes it.
	if _, err := cs.CoreV1().ServiceAccounts("kube-system").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	zero := int64(0)
	pod := func(name, node, ownerKind string) {
		t.Helper()
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system"},
			Spec: corev1.PodSpec{NodeName: node, TerminationGracePeriodSeconds: &zero,
				Containers: []corev1.Container{{Name: "c", Image: "i"}}},
		}
		if ownerKind != "" {
			yes := true
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: ownerKind, Name: name + "-owner", UID: types.UID(name), Controller: &yes}}
		}
		if _, err := cs.CoreV1().Pods("kube-system").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pod("a", "measured", "ReplicaSet")
	pod("b", "measured", "")
	pod("c", "other", "ReplicaSet")

	moved, err := emptyNode(ctx, cs, "measured")
	if err != nil || moved != 2 {
		t.Fatalf("emptyNode: %d pods, %v; want 2, nil", moved, err)
	}
	n, err := cs.CoreV1().Nodes().Get(ctx, "measured", metav1.GetOptions{})
	if err != nil || !n.Spec.Unschedulable {
		t.Fatalf("the node is not cordoned: %v", err)
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 1 || pods.Items[0].Name != "c" {
		t.Fatalf("pods left: %v, %v; want only the other node's c", pods, err)
	}
	if err := uncordon(ctx, cs, "measured"); err != nil {
		t.Fatal(err)
	}
	if n, err = cs.CoreV1().Nodes().Get(ctx, "measured", metav1.GetOptions{}); err != nil || n.Spec.Unschedulable {
		t.Fatalf("the node is still cordoned: %v", err)
	}

	// A DaemonSet's pod would come back: the node cannot be measured alone, and nothing is
	// deleted.
	labels := map[string]string{"app": "d"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "d-owner", Namespace: "kube-system"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}},
		},
	}
	if _, err := cs.AppsV1().DaemonSets("kube-system").Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod("d", "measured", "DaemonSet")
	pod("e", "measured", "ReplicaSet")
	if _, err := emptyNode(ctx, cs, "measured"); err == nil || !strings.Contains(err.Error(), "DaemonSet-managed Pods") || !strings.Contains(err.Error(), "kube-system/d") {
		t.Fatalf("emptyNode with a DaemonSet's pod: %v, want an error naming it", err)
	}
	for _, p := range []string{"d", "e"} {
		if _, err := cs.CoreV1().Pods("kube-system").Get(ctx, p, metav1.GetOptions{}); err != nil {
			t.Errorf("pod %s was deleted: %v", p, err)
		}
	}
}
