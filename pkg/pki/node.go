package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"path/filepath"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2"
)

// NodeOptions describes one node's kubelet and kube-proxy.
type NodeOptions struct {
	// Dir holds the node's certificates and keys (<data-dir>/agent/tls).
	Dir string
	// CredDir holds kubelet.kubeconfig and kubeproxy.kubeconfig; it defaults to Dir.
	CredDir string
	// APIServerURL is the server the node's kubeconfigs point at.
	APIServerURL string
	NodeName     string
	NodeIPs      []net.IP
}

// Node is one node's PKI. Every field is an absolute path.
type Node struct {
	Dir, CredDir string
	// ServerCA verifies kube-apiserver; the node's kubeconfigs trust it.
	ServerCA string
	// ClientCA verifies clients of the kubelet, kube-apiserver among them.
	ClientCA string
	// KubeletServingCert: ServerCA, CN=system:node:<name>, O=system:nodes, SANs <name>,
	// the node IPs, localhost and 127.0.0.1.
	KubeletServingCert, KubeletServingKey string
	// KubeletClientCert: ClientCA, CN=system:node:<name>, O=system:nodes (Node authorizer).
	KubeletClientCert, KubeletClientKey string
	// KubeProxyCert: ClientCA, CN=system:kube-proxy.
	KubeProxyCert, KubeProxyKey string
	// Kubeconfigs in CredDir referencing the files above by path.
	KubeletKubeconfig, KubeProxyKubeconfig string
}

// NodeCertRequest is what a node sends to have its certificates signed. A nil CSR asks for
// nothing, so a node renews only what it must. The node keeps its private keys; the CSRs'
// own subjects and SANs are ignored in favour of what NodeName and NodeIPs imply.
type NodeCertRequest struct {
	NodeName string
	NodeIPs  []net.IP
	// PEM "CERTIFICATE REQUEST"s, as certutil.MakeCSR makes them.
	KubeletServingCSR, KubeletClientCSR, KubeProxyCSR []byte
}

// NodeCerts is the server's answer to a NodeCertRequest, all PEM. The certificates not asked
// for are nil; the two CA certificates are always there.
type NodeCerts struct {
	ServerCA, ClientCA                       []byte
	KubeletServing, KubeletClient, KubeProxy []byte
}

// nodeSpecs is the one policy for node certificates: the server signs by it and the node
// checks its existing certificates against it.
func nodeSpecs(name string, ips []net.IP) (serving, kubelet, proxy leafSpec) {
	var sans certutil.AltNames
	addSANs(&sans, name, "localhost")
	addIPs(&sans, net.IPv4(127, 0, 0, 1))
	addIPs(&sans, ips...)
	node := "system:node:" + name
	serving = leafSpec{commonName: node, orgs: []string{"system:nodes"}, usage: x509.ExtKeyUsageServerAuth, sans: sans}
	kubelet = leafSpec{commonName: node, orgs: []string{"system:nodes"}, usage: x509.ExtKeyUsageClientAuth}
	proxy = leafSpec{commonName: "system:kube-proxy", usage: x509.ExtKeyUsageClientAuth}
	return serving, kubelet, proxy
}

// SignNodeCerts signs the certificates req asks for. It touches no files, so the supervisor
// can serve it to joining nodes once it authenticates them (which is its job, not this one's).
func (s *ControlPlane) SignNodeCerts(req NodeCertRequest) (*NodeCerts, error) {
	if req.NodeName == "" {
		return nil, errors.New("pki: node certificate request without a node name")
	}
	serving, kubelet, proxy := nodeSpecs(req.NodeName, req.NodeIPs)
	out := &NodeCerts{ServerCA: s.serverCA.certPEM, ClientCA: s.clientCA.certPEM}
	for _, c := range []struct {
		what string
		ca   *authority
		spec leafSpec
		csr  []byte
		out  *[]byte
	}{
		{"kubelet serving", s.serverCA, serving, req.KubeletServingCSR, &out.KubeletServing},
		{"kubelet client", s.clientCA, kubelet, req.KubeletClientCSR, &out.KubeletClient},
		{"kube-proxy client", s.clientCA, proxy, req.KubeProxyCSR, &out.KubeProxy},
	} {
		if c.csr == nil {
			continue
		}
		csr, err := parseCSR(c.csr)
		if err != nil {
			return nil, fmt.Errorf("pki: %s CSR of node %s: %w", c.what, req.NodeName, err)
		}
		if *c.out, err = c.ca.sign(c.spec, csr.PublicKey); err != nil {
			return nil, fmt.Errorf("pki: signing %s certificate of node %s: %w", c.what, req.NodeName, err)
		}
	}
	return out, nil
}

func parseCSR(data []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != certutil.CertificateRequestBlockType {
		return nil, errors.New("not a PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, err
	}
	// Proves the requester holds the private key it wants certified.
	if err := csr.CheckSignature(); err != nil {
		return nil, err
	}
	return csr, nil
}

// nodeFiles are the names in a node's Dir; the same on every node, joined or embedded.
func nodeFiles(dir, credDir string) *Node {
	f := func(name string) string { return filepath.Join(dir, name) }
	return &Node{
		Dir: dir, CredDir: credDir,
		ServerCA: f("server-ca.crt"), ClientCA: f("client-ca.crt"),
		KubeletServingCert: f("serving-kubelet.crt"), KubeletServingKey: f("serving-kubelet.key"),
		KubeletClientCert: f("client-kubelet.crt"), KubeletClientKey: f("client-kubelet.key"),
		KubeProxyCert: f("client-kube-proxy.crt"), KubeProxyKey: f("client-kube-proxy.key"),
		KubeletKubeconfig:   filepath.Join(credDir, "kubelet.kubeconfig"),
		KubeProxyKubeconfig: filepath.Join(credDir, "kubeproxy.kubeconfig"),
	}
}

// WriteNodeCerts puts what SignNodeCerts returned into a node's Dir, leaving files whose
// content is unchanged alone. The matching private keys are the node's to write.
func WriteNodeCerts(dir string, certs *NodeCerts) error {
	n := nodeFiles(dir, dir)
	for _, f := range []struct {
		path string
		pem  []byte
	}{
		{n.ServerCA, certs.ServerCA}, {n.ClientCA, certs.ClientCA},
		{n.KubeletServingCert, certs.KubeletServing},
		{n.KubeletClientCert, certs.KubeletClient},
		{n.KubeProxyCert, certs.KubeProxy},
	} {
		if f.pem == nil {
			continue
		}
		// What arrives over the network must at least be a certificate before it replaces one.
		if _, err := certutil.ParseCertsPEM(f.pem); err != nil {
			return fmt.Errorf("pki: refusing to write %s: %w", f.path, err)
		}
		if err := writeIfChanged(f.path, f.pem, certMode); err != nil {
			return err
		}
	}
	return nil
}

// EnsureNode issues this server's own node (the embedded agent) its certificates and
// kubeconfigs under opts.Dir, with the same reuse rules as EnsureControlPlane.
func (s *ControlPlane) EnsureNode(opts NodeOptions) (*Node, error) {
	return ensureNode(opts, s.SignNodeCerts)
}

// EnsureJoinedNode is EnsureNode for a node that joins over the network: sign sends the
// request to the server's supervisor.
func EnsureJoinedNode(opts NodeOptions, sign func(NodeCertRequest) (*NodeCerts, error)) (*Node, error) {
	return ensureNode(opts, sign)
}

// ensureNode is the node's half of the exchange, written against a sign function so that a
// joining agent can pass one that calls the supervisor instead of a local Server.
func ensureNode(opts NodeOptions, sign func(NodeCertRequest) (*NodeCerts, error)) (*Node, error) {
	if opts.Dir == "" || opts.NodeName == "" {
		return nil, errors.New("pki: NodeOptions.Dir and NodeOptions.NodeName must be set")
	}
	if err := checkServerURL(opts.APIServerURL); err != nil {
		return nil, fmt.Errorf("pki: NodeOptions.APIServerURL: %w", err)
	}
	if opts.CredDir == "" {
		opts.CredDir = opts.Dir
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("node pki directory %q: %w", opts.Dir, err)
	}
	credDir, err := filepath.Abs(opts.CredDir)
	if err != nil {
		return nil, fmt.Errorf("node credentials directory %q: %w", opts.CredDir, err)
	}
	for _, d := range []string{dir, credDir} {
		if err := ensureDir(d); err != nil {
			return nil, err
		}
	}
	n := nodeFiles(dir, credDir)

	// The local CA copies are enough to decide what is still good, so a restart with nothing
	// to renew needs no signer at all.
	serverCA, clientCA := loadCACopy(n.ServerCA), loadCACopy(n.ClientCA)
	serving, kubelet, proxy := nodeSpecs(opts.NodeName, opts.NodeIPs)
	req := NodeCertRequest{NodeName: opts.NodeName, NodeIPs: opts.NodeIPs}
	type pendingKey struct {
		path string
		pem  []byte
	}
	var keys []pendingKey
	for _, l := range []struct {
		ca        *authority
		caPath    string
		spec      leafSpec
		cert, key string
		csr       *[]byte
	}{
		{serverCA, n.ServerCA, serving, n.KubeletServingCert, n.KubeletServingKey, &req.KubeletServingCSR},
		{clientCA, n.ClientCA, kubelet, n.KubeletClientCert, n.KubeletClientKey, &req.KubeletClientCSR},
		{clientCA, n.ClientCA, proxy, n.KubeProxyCert, n.KubeProxyKey, &req.KubeProxyCSR},
	} {
		reason := "no usable CA certificate " + l.caPath
		if l.ca != nil {
			if reason, err = l.ca.leafProblem(l.spec, l.cert, l.key); err != nil {
				return nil, err
			}
		}
		if reason == "" {
			continue
		}
		klog.Infof("pki: requesting %s (%s)", l.cert, reason)
		keyPEM, key, err := newKeyPair()
		if err != nil {
			return nil, fmt.Errorf("generating key %s: %w", l.key, err)
		}
		subject := pkix.Name{CommonName: l.spec.commonName, Organization: l.spec.orgs}
		if *l.csr, err = certutil.MakeCSR(key, &subject, l.spec.sans.DNSNames, l.spec.sans.IPs); err != nil {
			return nil, fmt.Errorf("making CSR for %s: %w", l.cert, err)
		}
		keys = append(keys, pendingKey{l.key, keyPEM})
	}

	if len(keys) > 0 {
		certs, err := sign(req)
		if err != nil {
			return nil, err
		}
		// Keys only once the certificates are in hand: a failed signing must not leave a
		// still-valid certificate next to a key that is not its own.
		for _, k := range keys {
			if err := writeFileAtomic(k.path, k.pem, keyMode); err != nil {
				return nil, err
			}
		}
		if err := WriteNodeCerts(dir, certs); err != nil {
			return nil, err
		}
	}

	for _, kc := range []struct{ path, cert, key string }{
		{n.KubeletKubeconfig, n.KubeletClientCert, n.KubeletClientKey},
		{n.KubeProxyKubeconfig, n.KubeProxyCert, n.KubeProxyKey},
	} {
		if err := writeKubeconfig(kc.path, opts.APIServerURL, n.ServerCA, kc.cert, kc.key); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// loadCACopy returns a verify-only authority for a node's copy of a CA certificate, or nil
// when there is none worth trusting: the copy is replaced from the server in that case.
func loadCACopy(path string) *authority {
	data, ok, err := readOptional(path)
	if err != nil || !ok {
		return nil
	}
	certs, err := certutil.ParseCertsPEM(data)
	if err != nil || !certs[0].IsCA {
		return nil
	}
	return newAuthority(certs[0], nil, data)
}
