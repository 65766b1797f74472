package pki

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// loadCurrent loads a kubeconfig the way kubectl does and returns its current cluster and user.
func loadCurrent(t *testing.T, path string) (*clientcmdapi.Cluster, *clientcmdapi.AuthInfo) {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatalf("loading %s: %v", path, err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.Clusters[ctx.Cluster] == nil || cfg.AuthInfos[ctx.AuthInfo] == nil {
		t.Fatalf("%s: current context %q is incomplete", path, cfg.CurrentContext)
	}
	return cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
}

func TestKubeconfigsReferenceTheirFiles(t *testing.T) {
	s := mustEnsureControlPlane(t, testControlPlaneOptions(t))
	n := mustEnsureNode(t, s, testNodeOptions(s))
	for _, tc := range []struct{ kubeconfig, ca, cert, key string }{
		{s.AdminKubeconfig, s.ServerCA, s.AdminCert, s.AdminKey},
		{s.ControllerKubeconfig, s.ServerCA, s.ControllerCert, s.ControllerKey},
		{s.SchedulerKubeconfig, s.ServerCA, s.SchedulerCert, s.SchedulerKey},
		{s.KubeProxyKubeconfig, s.ServerCA, s.KubeProxyCert, s.KubeProxyKey},
		{n.KubeletKubeconfig, n.ServerCA, n.KubeletClientCert, n.KubeletClientKey},
		{n.KubeProxyKubeconfig, n.ServerCA, n.KubeProxyCert, n.KubeProxyKey},
	} {
		cluster, user := loadCurrent(t, tc.kubeconfig)
		if cluster.Server != s.APIServerURL || cluster.CertificateAuthority != tc.ca ||
			user.ClientCertificate != tc.cert || user.ClientKey != tc.key {
			t.Errorf("%s: server %s ca %s cert %s key %s; want %s %s %s %s", tc.kubeconfig,
				cluster.Server, cluster.CertificateAuthority, user.ClientCertificate, user.ClientKey,
				s.APIServerURL, tc.ca, tc.cert, tc.key)
		}
		if cluster.CertificateAuthorityData != nil || user.ClientCertificateData != nil || user.ClientKeyData != nil {
			t.Errorf("%s embeds data; it should reference files so renewals need no rewrite", tc.kubeconfig)
		}
		if _, err := clientcmd.BuildConfigFromFlags("", tc.kubeconfig); err != nil {
			t.Errorf("%s: %v", tc.kubeconfig, err)
		}
	}
}

func TestWriteAdminKubeconfig(t *testing.T) {
	s := mustEnsureControlPlane(t, testControlPlaneOptions(t))
	path := filepath.Join(t.TempDir(), "etc", "ketch", "ketch.yaml")

	if err := s.WriteAdminKubeconfig(path, 0o640, ""); err != nil {
		t.Fatal(err)
	}
	if m := fileMode(t, path); m != 0o640 {
		t.Errorf("mode %o, want exactly 640", m)
	}
	cluster, user := loadCurrent(t, path)
	for _, f := range []struct {
		got  []byte
		file string
	}{{cluster.CertificateAuthorityData, s.ServerCA}, {user.ClientCertificateData, s.AdminCert}, {user.ClientKeyData, s.AdminKey}} {
		want, _ := os.ReadFile(f.file)
		if string(f.got) != string(want) {
			t.Errorf("embedded data differs from %s", f.file)
		}
	}
	if cluster.CertificateAuthority != "" || user.ClientCertificate != "" || user.ClientKey != "" || cluster.Server != s.APIServerURL {
		t.Errorf("admin kubeconfig refers to files or the wrong server: %+v %+v", cluster, user)
	}

	// Unchanged content is not rewritten: same inode, not just same bytes.
	before, _ := os.Stat(path)
	if err := s.WriteAdminKubeconfig(path, 0o640, ""); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(path); !os.SameFile(before, after) {
		t.Error("identical admin kubeconfig was rewritten")
	}
	// A new mode alone is applied; new content replaces the file.
	if err := s.WriteAdminKubeconfig(path, 0o600, ""); err != nil || fileMode(t, path) != 0o600 {
		t.Errorf("mode change: err %v, mode %o", err, fileMode(t, path))
	}
	if err := s.WriteAdminKubeconfig(path, 0o600, "https://ketch.example.com:6443"); err != nil {
		t.Fatal(err)
	}
	if cluster, _ := loadCurrent(t, path); cluster.Server != "https://ketch.example.com:6443" {
		t.Errorf("server %s after change", cluster.Server)
	}
	if err := s.WriteAdminKubeconfig(path, 0o600, "ketch.example.com"); err == nil {
		t.Error("server without https:// accepted")
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

// TestTLSEndToEnd serves with the kube-apiserver certificate, demanding client certificates
// from the client CA as kube-apiserver's --client-ca-file does, and connects as the admin.
func TestTLSEndToEnd(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.TLS.PeerCertificates[0].Subject.CommonName)
		w.WriteHeader(http.StatusOK)
	}))
	defer ts.Close()

	opts := testControlPlaneOptions(t)
	opts.APIServerURL = "https://" + ts.Listener.Addr().String() // 127.0.0.1, a SAN
	s := mustEnsureControlPlane(t, opts)
	n := mustEnsureNode(t, s, testNodeOptions(s))
	serving, err := tls.LoadX509KeyPair(s.APIServerCert, s.APIServerKey)
	if err != nil {
		t.Fatal(err)
	}
	ts.TLS = &tls.Config{
		Certificates: []tls.Certificate{serving},
		ClientCAs:    caPool(t, s.ClientCA),
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	ts.StartTLS()

	get := func(cfg *rest.Config) (int, error) {
		client, err := rest.HTTPClientFor(cfg)
		if err != nil {
			return 0, err
		}
		resp, err := client.Get(ts.URL + "/healthz")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	embedded := filepath.Join(t.TempDir(), "ketch.yaml")
	if err := s.WriteAdminKubeconfig(embedded, 0o600, ""); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(embedded)
	if err != nil {
		t.Fatal(err)
	}
	copied, err := clientcmd.RESTConfigFromKubeConfig(data) // as if on another machine
	if err != nil {
		t.Fatal(err)
	}
	for name, kubeconfig := range map[string]string{"admin.kubeconfig": s.AdminKubeconfig, "kubelet.kubeconfig": n.KubeletKubeconfig} {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		if code, err := get(cfg); err != nil || code != http.StatusOK {
			t.Errorf("%s: %d %v", name, code, err)
		}
	}
	if code, err := get(copied); err != nil || code != http.StatusOK {
		t.Errorf("embedded admin kubeconfig: %d %v", code, err)
	}
	mu.Lock()
	slices.Sort(seen)
	if want := []string{"system:admin", "system:admin", "system:node:node-a"}; !slices.Equal(seen, want) {
		t.Errorf("server saw clients %v, want %v", seen, want)
	}
	mu.Unlock()

	// Another cluster's admin is refused by the handshake, and does not trust this server.
	other := mustEnsureControlPlane(t, testControlPlaneOptions(t))
	cfg, err := clientcmd.BuildConfigFromFlags("", other.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host = ts.URL
	if _, err := get(cfg); err == nil {
		t.Error("another cluster's admin got through")
	}
	cfg.TLSClientConfig.CAFile = s.ServerCA
	if _, err := get(cfg); err == nil {
		t.Error("a client certificate from another cluster's CA was accepted")
	}
}
