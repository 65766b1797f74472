package addonpods

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ketch-k8s/ketch/internal/harness"
)

func TestAvailable(t *testing.T) {
	two := int32(2)
	ok := func() *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "coredns", Generation: 3},
			Spec:       appsv1.DeploymentSpec{Replicas: &two},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2,
				Conditions: []appsv1.DeploymentCondition{
					{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue},
					{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue},
				}},
		}
	}
	if !Available(ok()) {
		t.Fatal("a fully rolled out Deployment is not available")
	}
	for name, change := range map[string]func(*appsv1.Deployment){
		"spec not yet observed":  func(d *appsv1.Deployment) { d.Status.ObservedGeneration = 2 },
		"a replica not ready":    func(d *appsv1.Deployment) { d.Status.ReadyReplicas = 1 },
		"a replica not updated":  func(d *appsv1.Deployment) { d.Status.UpdatedReplicas = 1 },
		"an old replica left":    func(d *appsv1.Deployment) { d.Status.Replicas = 3 },
		"ready, not available":   func(d *appsv1.Deployment) { d.Status.AvailableReplicas = 1 },
		"Available False":        func(d *appsv1.Deployment) { d.Status.Conditions[1].Status = corev1.ConditionFalse },
		"no Available condition": func(d *appsv1.Deployment) { d.Status.Conditions = d.Status.Conditions[:1] },
	} {
		d := ok()
		change(d)
		if Available(d) {
			t.Errorf("%s: available", name)
		}
	}
	// No replicas in the spec means 1.
	d := ok()
	d.Spec.Replicas = nil
	d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = 1, 1, 1, 1
	if !Available(d) {
		t.Error("default replicas: not available")
	}
}

func TestProcsByRole(t *testing.T) {
	procs := []harness.Proc{
		{PID: 10, Argv: []string{"/ketch-addons", "coredns", "-conf", "/etc/coredns/Corefile"}},
		{PID: 11, Argv: []string{"/ketch-addons", "metrics-server", "--secure-port=10250"}},
		{PID: 12, Argv: []string{"/ketch-addons", "local-path-helper", "create"}},
		{PID: 13, Argv: []string{"/ketch-addons", "coredns"}},
		// Not the addon program: another path, the program without a role, another program
		// that names it.
		{PID: 20, Argv: []string{"/usr/bin/ketch-addons", "coredns"}},
		{PID: 21, Argv: []string{"/ketch-addons"}},
		{PID: 22, Argv: []string{"/pause", "/ketch-addons", "coredns"}},
		{PID: 23, Argv: []string{""}},
	}
	got := procsByRole(procs)
	want := map[string][]int{"coredns": {10, 13}, "metrics-server": {11}, "local-path-helper": {12}}
	if len(got) != len(want) {
		t.Fatalf("procsByRole = %v, want %v", got, want)
	}
	for role, pids := range want {
		if !slices.Equal(got[role], pids) {
			t.Errorf("role %s: %v, want %v", role, got[role], pids)
		}
	}
}
