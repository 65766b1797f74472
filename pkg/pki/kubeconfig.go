package pki

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeconfigName is the cluster, user and context name, as in k3s's kubeconfigs.
const kubeconfigName = "default"

func newKubeconfig(server string, cluster *clientcmdapi.Cluster, user *clientcmdapi.AuthInfo) ([]byte, error) {
	cluster.Server = server
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[kubeconfigName] = cluster
	cfg.AuthInfos[kubeconfigName] = user
	cfg.Contexts[kubeconfigName] = &clientcmdapi.Context{Cluster: kubeconfigName, AuthInfo: kubeconfigName}
	cfg.CurrentContext = kubeconfigName
	return clientcmd.Write(*cfg)
}

// writeKubeconfig writes a kubeconfig that references the CA, certificate and key by path, so
// a renewed certificate is picked up without rewriting it.
func writeKubeconfig(path, server, caFile, certFile, keyFile string) error {
	data, err := newKubeconfig(server,
		&clientcmdapi.Cluster{CertificateAuthority: caFile},
		&clientcmdapi.AuthInfo{ClientCertificate: certFile, ClientKey: keyFile})
	if err != nil {
		return fmt.Errorf("encoding kubeconfig %s: %w", path, err)
	}
	return writeIfChanged(path, data, kubeconfigMode)
}

// WriteAdminKubeconfig writes the user-facing admin kubeconfig (ketch.yaml) with the server CA,
// admin certificate and key embedded, so it still works when copied to another machine.
// server is the URL users reach the API at; empty means the ControlPlane's APIServerURL. The file
// gets exactly mode (the caller's --write-kubeconfig-mode); it is replaced atomically, and only
// when its content would change. A missing parent directory is created 0755, since mode may
// be meant to let other users read the file.
func (s *ControlPlane) WriteAdminKubeconfig(path string, mode os.FileMode, server string) error {
	if server == "" {
		server = s.APIServerURL
	}
	if err := checkServerURL(server); err != nil {
		return fmt.Errorf("admin kubeconfig %s: %w", path, err)
	}
	var blobs [3][]byte
	for i, f := range []string{s.ServerCA, s.AdminCert, s.AdminKey} {
		var err error
		if blobs[i], err = os.ReadFile(f); err != nil {
			return fmt.Errorf("admin kubeconfig %s: %w", path, err)
		}
	}
	data, err := newKubeconfig(server,
		&clientcmdapi.Cluster{CertificateAuthorityData: blobs[0]},
		&clientcmdapi.AuthInfo{ClientCertificateData: blobs[1], ClientKeyData: blobs[2]})
	if err != nil {
		return fmt.Errorf("encoding admin kubeconfig %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating directory for admin kubeconfig %s: %w", path, err)
	}
	return writeIfChanged(path, data, mode.Perm())
}
