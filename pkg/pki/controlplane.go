package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"

	certutil "k8s.io/client-go/util/cert"
)

// ControlPlaneOptions is what EnsureControlPlane needs to know about the cluster.
type ControlPlaneOptions struct {
	// Dir holds the CAs, keys and certificates (<data-dir>/server/tls).
	Dir string
	// CredDir holds the control plane's kubeconfigs (<data-dir>/server/cred).
	CredDir string
	// APIServerURL is the server the kubeconfigs point at, such as https://127.0.0.1:6443.
	APIServerURL string
	// NodeName and NodeIPs are added to the kube-apiserver serving certificate's SANs.
	NodeName string
	NodeIPs  []net.IP
	// ServiceIP is the first address of the service CIDR: the kubernetes Service's ClusterIP,
	// which in-cluster clients dial.
	ServiceIP net.IP
	// ClusterDomain defaults to cluster.local.
	ClusterDomain string
	// TLSSANs are the --tls-san values: IP literals become IP SANs, anything else a DNS SAN.
	TLSSANs []string
}

// ControlPlane is the control plane's PKI; only EnsureControlPlane makes a usable one, since it also holds
// the loaded CAs that SignNodeCerts signs with. Every field is an absolute path.
type ControlPlane struct {
	Dir, CredDir, APIServerURL string

	// ClientCA signs every client certificate (users, components, kubelets).
	ClientCA, ClientCAKey string
	// ServerCA signs every serving certificate (kube-apiserver, kubelets).
	ServerCA, ServerCAKey string
	// RequestHeaderCA signs only the front-proxy client certificate, so no other client
	// certificate can set X-Remote-User headers on the aggregation layer.
	RequestHeaderCA, RequestHeaderCAKey string

	// ServiceAccountKey (RSA private key, PEM) signs tokens; ServiceAccountPub verifies them.
	ServiceAccountKey, ServiceAccountPub string

	// APIServerCert is kube-apiserver's serving certificate (ServerCA).
	APIServerCert, APIServerKey string
	// APIServerKubeletClientCert is kube-apiserver's client certificate towards kubelets
	// (ClientCA, CN=system:kube-apiserver, O=system:masters).
	APIServerKubeletClientCert, APIServerKubeletClientKey string
	// FrontProxyClientCert is kube-apiserver's client certificate towards aggregated API
	// servers (RequestHeaderCA, CN=system:auth-proxy).
	FrontProxyClientCert, FrontProxyClientKey string

	// Client certificates (ClientCA), referenced by the kubeconfigs below.
	AdminCert, AdminKey           string // CN=system:admin, O=system:masters
	ControllerCert, ControllerKey string // CN=system:kube-controller-manager
	SchedulerCert, SchedulerKey   string // CN=system:kube-scheduler
	KubeProxyCert, KubeProxyKey   string // CN=system:kube-proxy

	// Kubeconfigs in CredDir, referencing the files above by path and trusting ServerCA.
	AdminKubeconfig, ControllerKubeconfig, SchedulerKubeconfig, KubeProxyKubeconfig string

	clientCA, serverCA *authority
}

// EnsureControlPlane creates what is missing or due for renewal under opts.Dir and opts.CredDir and
// reuses everything else unchanged. See the package documentation for the rules.
func EnsureControlPlane(opts ControlPlaneOptions) (*ControlPlane, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("pki directory %q: %w", opts.Dir, err)
	}
	credDir, err := filepath.Abs(opts.CredDir)
	if err != nil {
		return nil, fmt.Errorf("credentials directory %q: %w", opts.CredDir, err)
	}
	for _, d := range []string{dir, credDir} {
		if err := ensureDir(d); err != nil {
			return nil, err
		}
	}
	tls := func(name string) string { return filepath.Join(dir, name) }
	cred := func(name string) string { return filepath.Join(credDir, name) }
	s := &ControlPlane{
		Dir: dir, CredDir: credDir, APIServerURL: opts.APIServerURL,

		ClientCA: tls("client-ca.crt"), ClientCAKey: tls("client-ca.key"),
		ServerCA: tls("server-ca.crt"), ServerCAKey: tls("server-ca.key"),
		RequestHeaderCA: tls("request-header-ca.crt"), RequestHeaderCAKey: tls("request-header-ca.key"),

		ServiceAccountKey: tls("service.key"), ServiceAccountPub: tls("service.pub"),

		APIServerCert: tls("serving-kube-apiserver.crt"), APIServerKey: tls("serving-kube-apiserver.key"),
		APIServerKubeletClientCert: tls("client-kube-apiserver.crt"), APIServerKubeletClientKey: tls("client-kube-apiserver.key"),
		FrontProxyClientCert: tls("client-auth-proxy.crt"), FrontProxyClientKey: tls("client-auth-proxy.key"),

		AdminCert: tls("client-admin.crt"), AdminKey: tls("client-admin.key"),
		ControllerCert: tls("client-controller.crt"), ControllerKey: tls("client-controller.key"),
		SchedulerCert: tls("client-scheduler.crt"), SchedulerKey: tls("client-scheduler.key"),
		KubeProxyCert: tls("client-kube-proxy.crt"), KubeProxyKey: tls("client-kube-proxy.key"),

		AdminKubeconfig:      cred("admin.kubeconfig"),
		ControllerKubeconfig: cred("controller.kubeconfig"),
		SchedulerKubeconfig:  cred("scheduler.kubeconfig"),
		KubeProxyKubeconfig:  cred("kubeproxy.kubeconfig"),
	}

	if s.clientCA, err = loadOrCreateCA(s.ClientCA, s.ClientCAKey, "client-ca"); err != nil {
		return nil, err
	}
	if s.serverCA, err = loadOrCreateCA(s.ServerCA, s.ServerCAKey, "server-ca"); err != nil {
		return nil, err
	}
	requestHeaderCA, err := loadOrCreateCA(s.RequestHeaderCA, s.RequestHeaderCAKey, "request-header-ca")
	if err != nil {
		return nil, err
	}
	if err := ensureServiceAccountKey(s.ServiceAccountKey, s.ServiceAccountPub); err != nil {
		return nil, err
	}

	client := func(cn string, orgs ...string) leafSpec {
		return leafSpec{commonName: cn, orgs: orgs, usage: x509.ExtKeyUsageClientAuth}
	}
	leaves := []struct {
		ca        *authority
		spec      leafSpec
		cert, key string
	}{
		{s.serverCA, apiServerSpec(opts), s.APIServerCert, s.APIServerKey},
		// system:masters lets kube-apiserver use exec/logs/port-forward through the kubelets'
		// webhook authorization without RBAC that would have to exist before the API does.
		{s.clientCA, client("system:kube-apiserver", "system:masters"), s.APIServerKubeletClientCert, s.APIServerKubeletClientKey},
		{requestHeaderCA, client("system:auth-proxy"), s.FrontProxyClientCert, s.FrontProxyClientKey},
		{s.clientCA, client("system:admin", "system:masters"), s.AdminCert, s.AdminKey},
		{s.clientCA, client("system:kube-controller-manager"), s.ControllerCert, s.ControllerKey},
		{s.clientCA, client("system:kube-scheduler"), s.SchedulerCert, s.SchedulerKey},
		{s.clientCA, client("system:kube-proxy"), s.KubeProxyCert, s.KubeProxyKey},
	}
	for _, l := range leaves {
		if err := l.ca.ensureLeaf(l.spec, l.cert, l.key); err != nil {
			return nil, err
		}
	}

	for _, kc := range []struct{ path, cert, key string }{
		{s.AdminKubeconfig, s.AdminCert, s.AdminKey},
		{s.ControllerKubeconfig, s.ControllerCert, s.ControllerKey},
		{s.SchedulerKubeconfig, s.SchedulerCert, s.SchedulerKey},
		{s.KubeProxyKubeconfig, s.KubeProxyCert, s.KubeProxyKey},
	} {
		if err := writeKubeconfig(kc.path, s.APIServerURL, s.ServerCA, kc.cert, kc.key); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (o ControlPlaneOptions) check() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("pki: ControlPlaneOptions.Dir is empty"))
	}
	if o.CredDir == "" {
		errs = append(errs, errors.New("pki: ControlPlaneOptions.CredDir is empty"))
	}
	if o.ServiceIP == nil {
		errs = append(errs, errors.New("pki: ControlPlaneOptions.ServiceIP is empty; in-cluster clients dial it, so the serving certificate must name it"))
	}
	if err := checkServerURL(o.APIServerURL); err != nil {
		errs = append(errs, fmt.Errorf("pki: ControlPlaneOptions.APIServerURL: %w", err))
	}
	return errors.Join(errs...)
}

func checkServerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an https://host[:port] URL", s)
	}
	return nil
}

func apiServerSpec(opts ControlPlaneOptions) leafSpec {
	domain := opts.ClusterDomain
	if domain == "" {
		domain = "cluster.local"
	}
	var sans certutil.AltNames
	addSANs(&sans, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc."+domain, "localhost", opts.NodeName)
	// ::1 costs nothing when the host has no IPv6 loopback and saves a surprise when it has.
	addIPs(&sans, net.IPv4(127, 0, 0, 1), net.IPv6loopback, opts.ServiceIP)
	addIPs(&sans, opts.NodeIPs...)
	addSANs(&sans, opts.TLSSANs...)
	return leafSpec{commonName: "kube-apiserver", usage: x509.ExtKeyUsageServerAuth, sans: sans}
}

// SharedFiles are the files below the control plane's tls dir that every server of a cluster
// holds the same copy of: the CAs with their keys and the service-account key. Everything else
// there is each server's own, signed with them. SharedEtcdFiles are those of embedded etcd.
var (
	SharedFiles = []string{
		"client-ca.crt", "client-ca.key", "server-ca.crt", "server-ca.key",
		"request-header-ca.crt", "request-header-ca.key", "service.key", "service.pub",
	}
	SharedEtcdFiles = []string{"etcd/peer-ca.crt", "etcd/peer-ca.key", "etcd/server-ca.crt", "etcd/server-ca.key"}
)

// EnsureSharedFiles creates the cluster's CAs and service-account key in dir where they are
// missing, as the first server of a cluster does before it hands them to the others.
func EnsureSharedFiles(dir string) error {
	if err := ensureDir(dir); err != nil {
		return err
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	for _, name := range []string{"client-ca", "server-ca", "request-header-ca"} {
		if _, err := loadOrCreateCA(f(name+".crt"), f(name+".key"), name); err != nil {
			return err
		}
	}
	return ensureServiceAccountKey(f("service.key"), f("service.pub"))
}
