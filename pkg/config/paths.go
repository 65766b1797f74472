package config

import (
	"os"
	"path/filepath"
)

// Paths are every file and directory a node keeps, derived from its data dir and run dir in this
// one place. The layout (as in k3s):
//
//	<data-dir>/ketch.pid          the data dir's lock, with the holder's pid
//	<data-dir>/logs/ketch.log     the components' logs (unless --debug)
//	<data-dir>/data/<hash>/bin    the unpacked runtime bundle
//	<data-dir>/server/            a server's state: db/ (bbolt, or etcd/), tls/, cred/, manifests/, token
//	<data-dir>/agent/             the node's state: tls/, kubeconfigs, containerd/, kubelet/, etc/, images/, ...
//	<data-dir>/storage/           local-path volumes
//	<run-dir>/ketch.pid           the run dir's lock
//	<run-dir>/datastore.sock      the datastore, for kube-apiserver
//	<run-dir>/containerd/         containerd's state and socket
//	<run-dir>/flannel/subnet.env  flannel's lease
type Paths struct {
	DataDir, RunDir string
}

// DataDirLock and RunDirLock keep a second ketch off the same dirs.
func (p Paths) DataDirLock() string { return filepath.Join(p.DataDir, "ketch.pid") }
func (p Paths) RunDirLock() string  { return filepath.Join(p.RunDir, "ketch.pid") }

// LogFile gets everything the components write unless --debug.
func (p Paths) LogFile() string { return filepath.Join(p.DataDir, "logs", "ketch.log") }

// BundleDir is where the runtime bundle and the addon program are unpacked, by content hash.
func (p Paths) BundleDir() string { return filepath.Join(p.DataDir, "data") }

// StorageDir holds the local-path provisioner's volumes on this node.
func (p Paths) StorageDir() string { return filepath.Join(p.DataDir, "storage") }

// A server's state.
func (p Paths) ServerDir() string       { return filepath.Join(p.DataDir, "server") }
func (p Paths) DatastoreDir() string    { return filepath.Join(p.ServerDir(), "db") }
func (p Paths) ServerTLSDir() string    { return filepath.Join(p.ServerDir(), "tls") }
func (p Paths) ServerCredDir() string   { return filepath.Join(p.ServerDir(), "cred") }
func (p Paths) ManifestsDir() string    { return filepath.Join(p.ServerDir(), "manifests") }
func (p Paths) TokenFile() string       { return filepath.Join(p.ServerDir(), "token") }
func (p Paths) ServerCAFile() string    { return filepath.Join(p.ServerTLSDir(), "server-ca.crt") }
func (p Paths) AdminKubeconfig() string { return filepath.Join(p.ServerCredDir(), "admin.kubeconfig") }

// EtcdDir is the embedded etcd member's data dir; BboltFile the bbolt datastore's file, which
// a move to embedded etcd keeps aside as BboltMigratedFile.
func (p Paths) EtcdDir() string   { return filepath.Join(p.DatastoreDir(), "etcd") }
func (p Paths) BboltFile() string { return filepath.Join(p.DatastoreDir(), "datastore.db") }
func (p Paths) BboltMigratedFile() string {
	return filepath.Join(p.DatastoreDir(), "datastore.db.migrated")
}

// EtcdJoinedFile records that this server joined an existing etcd cluster (and from where), so
// that a later --cluster-init is refused instead of splitting the cluster.
func (p Paths) EtcdJoinedFile() string { return filepath.Join(p.DatastoreDir(), "etcd-joined") }

// HasEtcdMember is whether an embedded etcd member's data is here.
func (p Paths) HasEtcdMember() bool {
	_, err := os.Stat(filepath.Join(p.EtcdDir(), "member"))
	return err == nil
}

// DatastoreSocket is where kube-apiserver reaches the datastore: a unix socket, never a port.
func (p Paths) DatastoreSocket() string { return filepath.Join(p.RunDir, "datastore.sock") }

// The node's state.
func (p Paths) AgentDir() string         { return filepath.Join(p.DataDir, "agent") }
func (p Paths) AgentTLSDir() string      { return filepath.Join(p.AgentDir(), "tls") }
func (p Paths) NodePasswordFile() string { return filepath.Join(p.AgentDir(), "node-password") }
func (p Paths) ImagesDir() string        { return filepath.Join(p.AgentDir(), "images") }
func (p Paths) KubeletDir() string       { return filepath.Join(p.AgentDir(), "kubelet") }
func (p Paths) PodLogsDir() string       { return filepath.Join(p.AgentDir(), "pod-logs") }

// VolumePluginDir is where the kubelet and the controller-manager look for FlexVolume drivers;
// their default, /usr/libexec/kubernetes/kubelet-plugins/volume/exec, is outside the data dir
// and would be left on the host by an uninstall.
func (p Paths) VolumePluginDir() string {
	return filepath.Join(p.AgentDir(), "kubelet-plugins", "volume", "exec")
}
func (p Paths) CNINetworksDir() string { return filepath.Join(p.AgentDir(), "cni", "networks") }

// AgentEtcDir holds the configuration files ketch writes for the node's components at every
// start: kubelet/, kube-proxy/, containerd/, cni/net.d/, flannel/.
func (p Paths) AgentEtcDir() string { return filepath.Join(p.AgentDir(), "etc") }
func (p Paths) KubeletConfigFile() string {
	return filepath.Join(p.AgentEtcDir(), "kubelet", "config.yaml")
}
func (p Paths) StaticPodDir() string { return filepath.Join(p.AgentEtcDir(), "kubelet", "manifests") }
func (p Paths) KubeProxyConfigFile() string {
	return filepath.Join(p.AgentEtcDir(), "kube-proxy", "config.yaml")
}
func (p Paths) FlannelConfDir() string    { return filepath.Join(p.AgentEtcDir(), "flannel") }
func (p Paths) FlannelSubnetFile() string { return filepath.Join(p.RunDir, "flannel", "subnet.env") }
func (p Paths) ContainerdRoot() string    { return filepath.Join(p.AgentDir(), "containerd") }
func (p Paths) ContainerdConfigFile() string {
	return filepath.Join(p.AgentEtcDir(), "containerd", "config.toml")
}
func (p Paths) ContainerdCertsDir() string {
	return filepath.Join(p.AgentEtcDir(), "containerd", "certs.d")
}
func (p Paths) CNIConfDir() string      { return filepath.Join(p.AgentEtcDir(), "cni", "net.d") }
func (p Paths) ContainerdState() string { return filepath.Join(p.RunDir, "containerd") }
func (p Paths) ContainerdSocket() string {
	return filepath.Join(p.ContainerdState(), "containerd.sock")
}

// CrictlConfigFile is crictl's config file for ketch crictl, where k3s keeps its own. Unlike the
// rest of AgentEtcDir it is not the node's: ketch crictl creates it, without endpoints, and
// keeps what `crictl config --set` writes to it.
func (p Paths) CrictlConfigFile() string { return filepath.Join(p.AgentEtcDir(), "crictl.yaml") }
