package localpath

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/apis/core"
	k8sv1 "k8s.io/kubernetes/pkg/apis/core/v1"
	"k8s.io/kubernetes/pkg/apis/core/validation"
	volumevalidation "k8s.io/kubernetes/pkg/volume/validation"
)

// The objects the provisioner creates go through the API server's own defaulting and
// validation, so that a field the server would refuse fails here rather than on a cluster.

func validatePod(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	pod = pod.DeepCopy()
	k8sv1.SetObjectDefaults_Pod(pod)
	var internal core.Pod
	if err := k8sv1.Convert_v1_Pod_To_core_Pod(pod, &internal, nil); err != nil {
		t.Fatalf("converting the pod: %v", err)
	}
	if errs := validation.ValidatePodCreate(&internal, validation.PodValidationOptions{ResourceIsPod: true}); len(errs) > 0 {
		t.Errorf("the API server would refuse pod %s: %v", pod.Name, errs.ToAggregate())
	}
}

func validateVolume(t *testing.T, pv *corev1.PersistentVolume) {
	t.Helper()
	pv = pv.DeepCopy()
	k8sv1.SetObjectDefaults_PersistentVolume(pv)
	var internal core.PersistentVolume
	if err := k8sv1.Convert_v1_PersistentVolume_To_core_PersistentVolume(pv, &internal, nil); err != nil {
		t.Fatalf("converting the volume: %v", err)
	}
	opts := validation.ValidationOptionsForPersistentVolume(&internal, nil)
	errs := validation.ValidatePersistentVolume(&internal, opts)
	if errs = append(errs, volumevalidation.ValidatePersistentVolume(&internal)...); len(errs) > 0 {
		t.Errorf("the API server would refuse volume %s: %v", pv.Name, errs.ToAggregate())
	}
}
