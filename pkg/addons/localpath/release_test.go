package localpath

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// testReleased is a volume of this provisioner whose claim has been deleted.
func testReleased(mod ...func(*corev1.PersistentVolume)) *corev1.PersistentVolume {
	pv, err := newVolume(testClaim(), testClass(), testNode(nil), "/var/lib/ketch/storage", defaultProvisionerName)
	if err != nil {
		panic(err)
	}
	pv.Status.Phase = corev1.VolumeReleased
	for _, m := range mod {
		m(pv)
	}
	return pv
}

func TestVolumeToDelete(t *testing.T) {
	for _, tc := range []struct {
		name string
		pv   *corev1.PersistentVolume
		want bool
	}{
		{"released, Delete", testReleased(), true},
		{"bound", testReleased(func(pv *corev1.PersistentVolume) { pv.Status.Phase = corev1.VolumeBound }), false},
		{"available", testReleased(func(pv *corev1.PersistentVolume) { pv.Status.Phase = corev1.VolumeAvailable }), false},
		{"Retain", testReleased(func(pv *corev1.PersistentVolume) {
			pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
		}), false},
		{"another provisioner's", testReleased(func(pv *corev1.PersistentVolume) {
			pv.Annotations["pv.kubernetes.io/provisioned-by"] = "rancher.io/local-path"
		}), false},
		{"made by hand", testReleased(func(pv *corev1.PersistentVolume) { pv.Annotations = nil }), false},
	} {
		if got := volumeToDelete(tc.pv, defaultProvisionerName); got != tc.want {
			t.Errorf("%s: volumeToDelete = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestVolumeLocation(t *testing.T) {
	dir := "/var/lib/ketch/storage/pvc-" + testUID + "_app_data"
	node, got, err := volumeLocation(testReleased())
	if err != nil || node != "node-1" || got != dir {
		t.Errorf("volumeLocation = %q, %q, %v; want node-1, %s", node, got, err, dir)
	}
	for _, tc := range []struct {
		name    string
		mod     func(*corev1.PersistentVolume)
		wantErr string
	}{
		{"no node annotation", func(pv *corev1.PersistentVolume) { delete(pv.Annotations, nodeAnnotation) }, "lacks"},
		{"no dir annotation", func(pv *corev1.PersistentVolume) { delete(pv.Annotations, dirAnnotation) }, "lacks"},
		{"relative dir", func(pv *corev1.PersistentVolume) { setDir(pv, "storage/pvc-1") }, "not a clean absolute path"},
		{"unclean dir", func(pv *corev1.PersistentVolume) { setDir(pv, "/var/lib/ketch/storage/../../..") }, "not a clean absolute path"},
		{"dir directly below /", func(pv *corev1.PersistentVolume) { setDir(pv, "/etc") }, "not a clean absolute path"},
		{"dir is /", func(pv *corev1.PersistentVolume) { setDir(pv, "/") }, "not a clean absolute path"},
		{"hostPath elsewhere", func(pv *corev1.PersistentVolume) { pv.Spec.HostPath.Path = "/var/lib/other" }, "differs from its hostPath"},
		{"no hostPath", func(pv *corev1.PersistentVolume) { pv.Spec.HostPath = nil }, "differs from its hostPath"},
	} {
		_, _, err := volumeLocation(testReleased(tc.mod))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.wantErr)
		}
	}
}

func setDir(pv *corev1.PersistentVolume, dir string) {
	pv.Annotations[dirAnnotation] = dir
	pv.Spec.HostPath.Path = dir
}
