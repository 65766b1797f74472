// Package localpath is ketch's local-path storage, two roles of the addon image
// (manifests/local-storage.yaml). The provisioner watches claims of StorageClasses with its
// provisioner name and, once the scheduler has picked a node (volumeBindingMode
// WaitForFirstConsumer), makes a directory for the claim on that node and a hostPath
// PersistentVolume pinned to the node; it deletes the directory and the volume when a
// released volume's reclaim policy is Delete. The directories are made and removed by helper
// pods run on the volume's node, so the provisioner itself needs no host access.
//
// Each node keeps its volumes under its own directory, which its ketch agent publishes as the
// Node annotation ketch.io/storage-dir: several ketch nodes may share one machine, each with
// its own data dir.
package localpath

const (
	// component names the provisioner in events and as the API field manager.
	component = "ketch-local-path"

	// defaultProvisionerName is what StorageClasses name in provisioner.
	defaultProvisionerName = "ketch.io/local-path"

	// storageDirAnnotation is on each Node: the absolute host directory under which that node
	// keeps local-path volumes.
	storageDirAnnotation = "ketch.io/storage-dir"

	// nodeAnnotation and dirAnnotation record on each volume the node and host directory the
	// provisioner made it in, which is where deleting it must happen.
	nodeAnnotation = "ketch.io/local-path-node"
	dirAnnotation  = "ketch.io/local-path-dir"
)
