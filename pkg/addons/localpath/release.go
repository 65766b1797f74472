package localpath

import (
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	volumeutil "k8s.io/component-helpers/storage/volume"
)

// volumeToDelete is whether pv is a volume this provisioner made whose claim is gone and whose
// reclaim policy asks for its data to be deleted. Retained volumes are the administrator's.
func volumeToDelete(pv *corev1.PersistentVolume, provisioner string) bool {
	return pv.Annotations[volumeutil.AnnDynamicallyProvisioned] == provisioner &&
		pv.Status.Phase == corev1.VolumeReleased &&
		pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete
}

// volumeLocation is where a volume to delete keeps its data: the node and the host directory
// the provisioner recorded when it made it. An error is a volume this provisioner cannot
// delete safely, for a Warning event on it.
func volumeLocation(pv *corev1.PersistentVolume) (node, dir string, err error) {
	node, dir = pv.Annotations[nodeAnnotation], pv.Annotations[dirAnnotation]
	if node == "" || dir == "" {
		return "", "", fmt.Errorf("volume %s lacks the %s and %s annotations that say where its data is; delete its directory and the volume by hand", pv.Name, nodeAnnotation, dirAnnotation)
	}
	// The directory is removed recursively with a storage directory mounted from the host, so
	// it must be a directory inside one, and the volume must agree on where its data is.
	if !validStorageDir(dir) || !validStorageDir(filepath.Dir(dir)) {
		return "", "", fmt.Errorf("volume %s: annotation %s=%q is not a clean absolute path at least two levels below /", pv.Name, dirAnnotation, dir)
	}
	if pv.Spec.HostPath == nil || pv.Spec.HostPath.Path != dir {
		return "", "", fmt.Errorf("volume %s: annotation %s=%q differs from its hostPath; delete its directory and the volume by hand", pv.Name, dirAnnotation, dir)
	}
	return node, dir, nil
}
