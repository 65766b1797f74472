package localpath

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestHelperPod(t *testing.T) {
	const (
		image = "localhost/ketch/addons:0123abcd"
		dir   = "/var/lib/ketch/storage/pvc-" + testUID + "_app_data"
	)
	for _, tc := range []struct {
		op       helperOp
		wantName string
		wantCaps []corev1.Capability
	}{
		{opCreate, "helper-pvc-" + testUID + "-create", nil},
		{opDelete, "helper-pvc-" + testUID + "-delete", []corev1.Capability{"DAC_OVERRIDE", "FOWNER"}},
	} {
		pod := helperPod(tc.op, "pvc-"+testUID, "node-1", dir, image, "kube-system")
		validatePod(t, pod)
		if pod.Name != tc.wantName || pod.Namespace != "kube-system" {
			t.Errorf("%s: pod %s/%s, want kube-system/%s", tc.op, pod.Namespace, pod.Name, tc.wantName)
		}
		s := pod.Spec
		if s.NodeName != "node-1" || s.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("%s: nodeName %q, restartPolicy %q", tc.op, s.NodeName, s.RestartPolicy)
		}
		if len(s.Tolerations) != 1 || s.Tolerations[0] != (corev1.Toleration{Operator: corev1.TolerationOpExists}) {
			t.Errorf("%s: tolerations %+v, want one that tolerates every taint", tc.op, s.Tolerations)
		}
		if s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken {
			t.Errorf("%s: the helper gets an API token", tc.op)
		}
		if len(s.Volumes) != 1 || s.Volumes[0].HostPath == nil || s.Volumes[0].HostPath.Path != "/var/lib/ketch/storage" ||
			*s.Volumes[0].HostPath.Type != corev1.HostPathDirectoryOrCreate {
			t.Errorf("%s: volumes %+v, want the storage directory", tc.op, s.Volumes)
		}
		c := s.Containers[0]
		if c.Image != image || c.ImagePullPolicy != corev1.PullNever {
			t.Errorf("%s: image %s, pull policy %s", tc.op, c.Image, c.ImagePullPolicy)
		}
		wantArgs := []string{"local-path-helper", string(tc.op), "--dir", "/storage/pvc-" + testUID + "_app_data", "--root", "/storage"}
		if !slices.Equal(c.Args, wantArgs) {
			t.Errorf("%s: args %q, want %q", tc.op, c.Args, wantArgs)
		}
		if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/storage" || c.VolumeMounts[0].ReadOnly {
			t.Errorf("%s: mounts %+v", tc.op, c.VolumeMounts)
		}
		sc := c.SecurityContext
		if *sc.RunAsUser != 0 || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem ||
			!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || !slices.Equal(sc.Capabilities.Add, tc.wantCaps) {
			t.Errorf("%s: security context %+v, capabilities %+v, want root with only %v", tc.op, sc, sc.Capabilities, tc.wantCaps)
		}
		if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
			t.Errorf("%s: no memory limit", tc.op)
		}
	}
}

func TestHelperPodName(t *testing.T) {
	long := "pv-" + strings.Repeat("x", 250)
	for _, op := range []helperOp{opCreate, opDelete} {
		name := helperPodName(op, long)
		if len(name) > maxPodName || !strings.HasPrefix(name, "helper-") || !strings.HasSuffix(name, "-"+string(op)) {
			t.Errorf("%s: %q (%d characters)", op, name, len(name))
		}
		validatePod(t, helperPod(op, long, "node-1", "/s/"+long, "img", "kube-system"))
	}
	if helperPodName(opCreate, long) == helperPodName(opCreate, long+"y") {
		t.Error("two long volume names give one helper pod name")
	}
}

func TestHelperResult(t *testing.T) {
	withStatus := func(phase corev1.PodPhase, cs ...corev1.ContainerState) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "helper"}, Status: corev1.PodStatus{Phase: phase}}
		for _, s := range cs {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: "helper", State: s})
		}
		return p
	}
	deadline := withStatus(corev1.PodFailed)
	deadline.Status.Reason, deadline.Status.Message = "DeadlineExceeded", "Pod was active on the node longer than the specified deadline"
	for _, tc := range []struct {
		name     string
		pod      *corev1.Pod
		wantDone bool
		wantErr  string
	}{
		{"pending", withStatus(corev1.PodPending), false, ""},
		{"pulling", withStatus(corev1.PodPending, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}), false, ""},
		{"running", withStatus(corev1.PodRunning, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}), false, ""},
		{"succeeded", withStatus(corev1.PodSucceeded), true, ""},
		{"failed with the helper's error", withStatus(corev1.PodFailed, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 1, Reason: "Error", Message: "ketch-addons local-path-helper: refusing --dir \"/storage\"\n"}}),
			true, `failed: ketch-addons local-path-helper: refusing --dir "/storage"`},
		{"failed without a message", withStatus(corev1.PodFailed, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 137, Reason: "OOMKilled"}}), true, "OOMKilled, exit code 137"},
		{"deadline", deadline, true, "DeadlineExceeded: Pod was active"},
		{"image missing", withStatus(corev1.PodPending, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: "ErrImageNeverPull", Message: "image not present"}}), true, "cannot start: ErrImageNeverPull: image not present"},
	} {
		done, err := helperResult(tc.pod)
		if done != tc.wantDone {
			t.Errorf("%s: done = %v, want %v", tc.name, done, tc.wantDone)
		}
		if tc.wantErr == "" && err != nil {
			t.Errorf("%s: unexpected error %v", tc.name, err)
		}
		if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.wantErr)
		}
	}
}
