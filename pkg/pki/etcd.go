package pki

import (
	"crypto/x509"
	"fmt"
	"net"
	"path/filepath"

	certutil "k8s.io/client-go/util/cert"
)

// Etcd is an embedded etcd member's TLS, below <data-dir>/server/tls/etcd/. Peer traffic and
// client traffic each have a CA of their own, as with k3s, so that a client certificate can
// never pass as a member and the other way round. The CAs are the cluster's (a joining server
// gets them with the rest of the bootstrap data); the leaves are each member's.
type Etcd struct {
	Dir string
	// PeerCA signs the members' peer certificates; PeerCert serves and dials peer traffic.
	PeerCA, PeerCAKey, PeerCert, PeerKey string
	// ServerCA signs the member's client-facing serving certificate and every client
	// certificate (kube-apiserver's, ketch's own).
	ServerCA, ServerCAKey, ServerCert, ServerKey string
	ClientCert, ClientKey                        string
}

// EtcdDir is where EnsureEtcd keeps the files, below the control plane's tls dir.
func EtcdDir(tlsDir string) string { return filepath.Join(tlsDir, "etcd") }

// EtcdFiles names the files below tlsDir/etcd, without making any.
func EtcdFiles(tlsDir string) (*Etcd, error) {
	dir, err := filepath.Abs(EtcdDir(tlsDir))
	if err != nil {
		return nil, fmt.Errorf("etcd pki directory: %w", err)
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	return &Etcd{
		Dir:    dir,
		PeerCA: f("peer-ca.crt"), PeerCAKey: f("peer-ca.key"), PeerCert: f("peer.crt"), PeerKey: f("peer.key"),
		ServerCA: f("server-ca.crt"), ServerCAKey: f("server-ca.key"), ServerCert: f("server.crt"), ServerKey: f("server.key"),
		ClientCert: f("client.crt"), ClientKey: f("client.key"),
	}, nil
}

// EnsureEtcd creates what is missing or due under tlsDir/etcd: the two CAs once, and the
// member's leaves for nodeName and ips, reusing what still does its job.
func EnsureEtcd(tlsDir, nodeName string, ips []net.IP) (*Etcd, error) {
	e, err := EtcdFiles(tlsDir)
	if err != nil {
		return nil, err
	}
	if err := ensureDir(e.Dir); err != nil {
		return nil, err
	}
	peerCA, err := loadOrCreateCA(e.PeerCA, e.PeerCAKey, "etcd-peer-ca")
	if err != nil {
		return nil, err
	}
	serverCA, err := loadOrCreateCA(e.ServerCA, e.ServerCAKey, "etcd-server-ca")
	if err != nil {
		return nil, err
	}
	var sans certutil.AltNames
	addSANs(&sans, "localhost", nodeName)
	addIPs(&sans, net.IPv4(127, 0, 0, 1), net.IPv6loopback)
	addIPs(&sans, ips...)
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	for _, l := range []struct {
		ca        *authority
		spec      leafSpec
		cert, key string
	}{
		{peerCA, leafSpec{commonName: "etcd-peer-" + nodeName, usage: x509.ExtKeyUsageServerAuth, alsoUsage: both, sans: sans}, e.PeerCert, e.PeerKey},
		{serverCA, leafSpec{commonName: "etcd-server-" + nodeName, usage: x509.ExtKeyUsageServerAuth, sans: sans}, e.ServerCert, e.ServerKey},
		{serverCA, leafSpec{commonName: "etcd-client", usage: x509.ExtKeyUsageClientAuth}, e.ClientCert, e.ClientKey},
	} {
		if err := l.ca.ensureLeaf(l.spec, l.cert, l.key); err != nil {
			return nil, err
		}
	}
	return e, nil
}
