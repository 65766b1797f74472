package supervisor_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/ketch-k8s/ketch/internal/testutil"
	"github.com/ketch-k8s/ketch/internal/testutil/apiserver"
	"github.com/ketch-k8s/ketch/pkg/pki"
	"github.com/ketch-k8s/ketch/pkg/supervisor"
	"github.com/ketch-k8s/ketch/pkg/token"
)

// The package's tests share one kube-apiserver on one ketch datastore, started by the first test
// that needs it (2.5 to 5 s) and stopped after the last. Each test makes its own cluster PKI,
// server token and supervisor, and its own node names, so the tests do not see each other.
var (
	mainTB     *apiserver.MainTB
	sharedOnce sync.Once
	shared     *apiserver.Server
)

func TestMain(m *testing.M) {
	mainTB = apiserver.NewMainTB("supervisor-test")
	os.Exit(mainTB.Finish(m.Run()))
}

// apiServer is the package's kube-apiserver.
func apiServer(t *testing.T) *apiserver.Server {
	t.Helper()
	sharedOnce.Do(func() {
		start := time.Now()
		shared = apiserver.Start(mainTB)
		t.Logf("kube-apiserver on ketch's datastore started in %v (log: %s)", time.Since(start).Round(time.Millisecond), mainTB.LogPath())
	})
	return shared
}

var agentConfig = supervisor.AgentConfig{
	ClusterCIDR: "10.42.0.0/16", ServiceCIDR: "10.43.0.0/16", ClusterDNS: "10.43.0.10",
	ClusterDomain: "cluster.local", FlannelBackend: "vxlan",
}

// testCluster is one cluster's supervisor, served over TLS as kube-apiserver serves it: with
// the serving certificate of the cluster's server CA, requesting but not requiring client
// certificates. Paths the supervisor does not serve reach a stand-in for kube-apiserver's
// handler chain that counts them and answers 418.
type testCluster struct {
	pki         *pki.ControlPlane
	caBundle    []byte // the server CA, served at /cacerts
	clientCA    []byte
	serverToken token.Token
	client      kubernetes.Interface // admin client of the apiserver the supervisor uses
	url         string
	passedOn    atomic.Int32

	mu   sync.Mutex
	seen []http.Header // every request's headers, with its path in "X-Test-Path"
}

// newCluster starts a supervisor on the package's kube-apiserver.
func newCluster(t *testing.T) *testCluster {
	t.Helper()
	return newClusterWith(t, apiServer(t).Client)
}

// newClusterWith starts a supervisor whose API client is client.
func newClusterWith(t *testing.T, client kubernetes.Interface, opts ...func(*supervisor.Options)) *testCluster {
	t.Helper()
	c := &testCluster{pki: newPKI(t), client: client}
	c.caBundle = readFile(t, c.pki.ServerCA)
	c.clientCA = readFile(t, c.pki.ClientCA)
	var err error
	if c.serverToken, err = token.EnsureServerToken(filepath.Join(t.TempDir(), "token"), c.caBundle, ""); err != nil {
		t.Fatal(err)
	}
	clientCAPool, err := certutil.NewPool(c.pki.ClientCA)
	if err != nil {
		t.Fatal(err)
	}
	o := supervisor.Options{
		CABundle: c.caBundle, ClientCA: clientCAPool, ServerToken: c.serverToken, Client: client,
		Sign: c.pki.SignNodeCerts, Agent: agentConfig,
	}
	for _, opt := range opts {
		opt(&o)
	}
	sup := supervisor.New(o)
	kubeAPIServer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.passedOn.Add(1)
		w.WriteHeader(http.StatusTeapot)
	})
	record := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := r.Header.Clone()
			h.Set("X-Test-Path", r.URL.Path)
			c.mu.Lock()
			c.seen = append(c.seen, h)
			c.mu.Unlock()
			next.ServeHTTP(w, r)
		})
	}
	serving, err := tls.LoadX509KeyPair(c.pki.APIServerCert, c.pki.APIServerKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(record(sup.Wrap(kubeAPIServer)))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serving}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	// Clients that give up on a certificate they do not trust make the server log handshake errors.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

// requests returns the headers of the requests the server got so far.
func (c *testCluster) requests() []http.Header {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]http.Header(nil), c.seen...)
}

var (
	saKeyOnce sync.Once
	saKey     []byte
)

// newPKI makes a cluster's CAs and certificates. Every cluster has CAs of its own, but they
// share one service-account key, which the supervisor does not use: the RSA key takes longer
// to make than all the rest.
func newPKI(t *testing.T) *pki.ControlPlane {
	t.Helper()
	saKeyOnce.Do(func() {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		if saKey, err = keyutil.MarshalPrivateKeyToPEM(key); err != nil {
			t.Fatal(err)
		}
	})
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls", "service.key"), saKey, 0o600); err != nil {
		t.Fatal(err)
	}
	cp, err := pki.EnsureControlPlane(pki.ControlPlaneOptions{
		Dir: filepath.Join(dir, "tls"), CredDir: filepath.Join(dir, "cred"),
		APIServerURL: "https://127.0.0.1:6443", NodeName: "server", ServiceIP: net.ParseIP("10.43.0.1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if cp.ServiceAccountKey != filepath.Join(dir, "tls", "service.key") {
		t.Fatalf("the service-account key is %s, not the one seeded", cp.ServiceAccountKey)
	}
	return cp
}

func (c *testCluster) connect(t *testing.T, tok token.Token) *supervisor.Client {
	t.Helper()
	sc, err := supervisor.Connect(context.Background(), c.url, tok)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return sc
}

// agentToken stores a new agent token of the cluster.
func (c *testCluster) agentToken(t *testing.T, ttl time.Duration) token.Token {
	t.Helper()
	tok, err := token.Create(context.Background(), c.client, c.caBundle, ttl, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// reply is a raw HTTP answer.
type reply struct {
	status int
	header http.Header
	body   string
}

// creds is what a raw request carries.
type creds struct {
	token    *token.Token
	password string
	cert     *tls.Certificate
}

// raw sends a request with a plain http.Client that trusts the cluster's server CA.
func (c *testCluster) raw(t *testing.T, method, path string, body []byte, cr creds) reply {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.caBundle)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cr.cert != nil {
		cfg.Certificates = []tls.Certificate{*cr.cert}
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequest(method, c.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if cr.token != nil {
		req.SetBasicAuth(cr.token.Username, cr.token.Password)
	}
	if cr.password != "" {
		req.Header.Set(supervisor.HeaderNodePassword, cr.password)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: strings.TrimSpace(string(data))}
}

// machine is a joining host: its node password and the keys it asks certificates for.
type machine struct {
	password                         string
	servingKey, kubeletKey, proxyKey *ecdsa.PrivateKey
}

func newMachine(t *testing.T) *machine {
	t.Helper()
	return &machine{password: rand.Text(), servingKey: newKey(t), kubeletKey: newKey(t), proxyKey: newKey(t)}
}

// request asks for all three of the node's certificates.
func (m *machine) request(t *testing.T, node string, ips ...net.IP) pki.NodeCertRequest {
	t.Helper()
	return pki.NodeCertRequest{
		NodeName: node, NodeIPs: ips,
		KubeletServingCSR: makeCSR(t, m.servingKey), KubeletClientCSR: makeCSR(t, m.kubeletKey), KubeProxyCSR: makeCSR(t, m.proxyKey),
	}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func makeCSR(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	// The subject is ignored by the server; a misleading one shows that it is.
	csr, err := certutil.MakeCSR(key, &pkix.Name{CommonName: "system:admin", Organization: []string{"system:masters"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// nodeName is a node name no other test (or earlier -count run) uses.
func nodeName(base string) string {
	return base + "-" + strings.ToLower(rand.Text()[:8])
}

func passwordHash(p string) string {
	sum := sha256.Sum256([]byte(p))
	return hex.EncodeToString(sum[:])
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func parseCert(t *testing.T, pemData []byte) *x509.Certificate {
	t.Helper()
	certs, err := certutil.ParseCertsPEM(pemData)
	if err != nil || len(certs) != 1 {
		t.Fatalf("parsing certificate %q: %v (%d certificates)", pemData, err, len(certs))
	}
	return certs[0]
}

// tlsPair is a client certificate for a raw request.
func tlsPair(t *testing.T, certPEM []byte, key crypto.Signer) *tls.Certificate {
	t.Helper()
	return &tls.Certificate{Certificate: [][]byte{parseCert(t, certPEM).Raw}, PrivateKey: key}
}

// nodeClientCert is node's kubelet client certificate, as the cluster's PKI signs it.
func nodeClientCert(t *testing.T, cp *pki.ControlPlane, node string) *tls.Certificate {
	t.Helper()
	key := newKey(t)
	certs, err := cp.SignNodeCerts(pki.NodeCertRequest{NodeName: node, KubeletClientCSR: makeCSR(t, key)})
	if err != nil {
		t.Fatal(err)
	}
	return tlsPair(t, certs.KubeletClient, key)
}

// signedByCA is a certificate of the given subject and usage, signed with a CA's key directly:
// what pki's policy never issues.
func signedByCA(t *testing.T, caCert, caKey string, cn string, orgs []string, usage x509.ExtKeyUsage) *tls.Certificate {
	t.Helper()
	ca := parseCert(t, readFile(t, caCert))
	parsed, err := keyutil.ParsePrivateKeyPEM(readFile(t, caKey))
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, parsed.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// closedURL is an https URL on a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	return "https://" + testutil.FreeLoopbackAddr(t)
}
