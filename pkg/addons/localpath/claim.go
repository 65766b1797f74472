package localpath

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	volumeutil "k8s.io/component-helpers/storage/volume"
)

// maxDirName is the longest file name Linux file systems take (NAME_MAX).
const maxDirName = 255

// claimIsOurs is the cheap test applied to every claim the informer sees: Pending, not being
// deleted, no volume yet, and handed to this provisioner by kube-controller-manager's PV
// controller, which sets the storage-provisioner annotation from the claim's StorageClass.
func claimIsOurs(claim *corev1.PersistentVolumeClaim, provisioner string) bool {
	if claim.Status.Phase != corev1.ClaimPending || claim.Spec.VolumeName != "" || claim.DeletionTimestamp != nil {
		return false
	}
	return claim.Annotations[volumeutil.AnnStorageProvisioner] == provisioner ||
		claim.Annotations[volumeutil.AnnBetaStorageProvisioner] == provisioner
}

// planClaim decides what to do for a claim that claimIsOurs, given its StorageClass: the node
// to make the volume on, or "" for nothing now (the class is another provisioner's, or the
// scheduler has not picked a node yet). An error is a request this provisioner cannot serve,
// for a Warning event on the claim; retrying cannot fix it.
func planClaim(claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, provisioner string) (string, error) {
	if class.Provisioner != provisioner {
		return "", nil
	}
	spec := &claim.Spec
	switch {
	case spec.Selector != nil:
		return "", errors.New("local-path volumes are made on demand and cannot match a selector: remove spec.selector")
	case spec.DataSource != nil || spec.DataSourceRef != nil:
		return "", errors.New("local-path volumes cannot be cloned or restored: remove spec.dataSource")
	case spec.VolumeMode != nil && *spec.VolumeMode == corev1.PersistentVolumeBlock:
		return "", errors.New("local-path volumes are directories: volumeMode Block is not supported")
	case len(spec.AccessModes) == 0:
		return "", errors.New("the claim has no access mode: use ReadWriteOnce or ReadWriteOncePod")
	}
	for _, m := range spec.AccessModes {
		if m != corev1.ReadWriteOnce && m != corev1.ReadWriteOncePod {
			return "", fmt.Errorf("access mode %s is not supported: a local-path volume lives on one node; use ReadWriteOnce or ReadWriteOncePod", m)
		}
	}
	if q, ok := spec.Resources.Requests[corev1.ResourceStorage]; !ok || q.Sign() <= 0 {
		return "", errors.New("the claim requests no storage: set spec.resources.requests.storage")
	}
	if len(class.MountOptions) > 0 {
		// The kubelet would refuse to mount the volume.
		return "", fmt.Errorf("StorageClass %s has mountOptions, which local-path (hostPath) volumes cannot take", class.Name)
	}
	node := claim.Annotations[volumeutil.AnnSelectedNode]
	if node == "" && (class.VolumeBindingMode == nil || *class.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer) {
		return "", fmt.Errorf("StorageClass %s binds volumes immediately, before any node is chosen; local-path volumes need volumeBindingMode WaitForFirstConsumer", class.Name)
	}
	return node, nil
}

// nodeStorageDir is the directory under which node keeps local-path volumes, as its ketch
// agent publishes it.
func nodeStorageDir(node *corev1.Node) (string, error) {
	dir, ok := node.Annotations[storageDirAnnotation]
	if !ok {
		return "", fmt.Errorf("node %s has no %s annotation, which tells where it keeps volumes: is it a ketch node, and is its agent running?", node.Name, storageDirAnnotation)
	}
	if !validStorageDir(dir) {
		return "", fmt.Errorf("node %s: annotation %s=%q is not a clean absolute path below /", node.Name, storageDirAnnotation, dir)
	}
	return dir, nil
}

// validStorageDir is whether dir can be a storage directory: absolute, clean, and not / itself
// (a helper pod mounts it, and it must never be the whole host).
func validStorageDir(dir string) bool {
	return filepath.IsAbs(dir) && filepath.Clean(dir) == dir && dir != "/"
}

// volumeName is the name of claim's volume, as kube-controller-manager would name it.
func volumeName(claim *corev1.PersistentVolumeClaim) string {
	return "pvc-" + string(claim.UID)
}

// dirName is the name of claim's directory in the storage directory: the volume name, for
// uniqueness, then namespace and claim name so that a person looking at the host can tell whose
// data it is.
func dirName(claim *corev1.PersistentVolumeClaim) string {
	name := volumeName(claim) + "_" + claim.Namespace + "_" + claim.Name
	// Claim names are ASCII, so cutting bytes cuts characters.
	return name[:min(len(name), maxDirName)]
}

// newVolume is the volume for claim of class on node, a directory in storageDir, pre-bound to
// the claim so that the PV controller binds exactly this pair.
func newVolume(claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, node *corev1.Node, storageDir, provisioner string) (*corev1.PersistentVolume, error) {
	// The kubelet sets this label (to the node name, as ketch runs it); node affinity can
	// only select labels.
	hostname := node.Labels[corev1.LabelHostname]
	if hostname == "" {
		return nil, fmt.Errorf("node %s has no %s label to pin the volume to", node.Name, corev1.LabelHostname)
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	dir := filepath.Join(storageDir, dirName(claim))
	hostPathType := corev1.HostPathDirectoryOrCreate
	filesystem := corev1.PersistentVolumeFilesystem
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name: volumeName(claim),
			Annotations: map[string]string{
				volumeutil.AnnDynamicallyProvisioned: provisioner,
				nodeAnnotation:                       node.Name,
				dirAnnotation:                        dir,
			},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity: corev1.ResourceList{
				corev1.ResourceStorage: claim.Spec.Resources.Requests[corev1.ResourceStorage],
			},
			AccessModes:                   slices.Clone(claim.Spec.AccessModes), // claim is the informer's
			VolumeMode:                    &filesystem,
			StorageClassName:              class.Name,
			PersistentVolumeReclaimPolicy: reclaim,
			ClaimRef: &corev1.ObjectReference{
				APIVersion: "v1",
				Kind:       "PersistentVolumeClaim",
				Namespace:  claim.Namespace,
				Name:       claim.Name,
				UID:        claim.UID,
			},
			NodeAffinity: &corev1.VolumeNodeAffinity{
				Required: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{
						MatchExpressions: []corev1.NodeSelectorRequirement{{
							Key:      corev1.LabelHostname,
							Operator: corev1.NodeSelectorOpIn,
							Values:   []string{hostname},
						}},
					}},
				},
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &hostPathType},
			},
		},
	}, nil
}
