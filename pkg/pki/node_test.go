package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	certutil "k8s.io/client-go/util/cert"
)

func testNodeOptions(s *ControlPlane) NodeOptions {
	return NodeOptions{
		Dir:          filepath.Join(filepath.Dir(filepath.Dir(s.Dir)), "agent", "tls"),
		APIServerURL: s.APIServerURL,
		NodeName:     "node-a",
		NodeIPs:      []net.IP{net.ParseIP("192.0.2.10"), net.ParseIP("2001:db8::10")},
	}
}

func mustEnsureNode(t *testing.T, s *ControlPlane, opts NodeOptions) *Node {
	t.Helper()
	n, err := s.EnsureNode(opts)
	if err != nil {
		t.Fatalf("EnsureNode: %v", err)
	}
	return n
}

func TestEnsureNodeIssuesVerifiableCerts(t *testing.T) {
	s := mustEnsureControlPlane(t, testControlPlaneOptions(t))
	n := mustEnsureNode(t, s, testNodeOptions(s))

	for _, pair := range [][2]string{{n.ServerCA, s.ServerCA}, {n.ClientCA, s.ClientCA}} {
		a, _ := os.ReadFile(pair[0])
		b, _ := os.ReadFile(pair[1])
		if len(a) == 0 || string(a) != string(b) {
			t.Errorf("%s is not a copy of %s", pair[0], pair[1])
		}
	}
	for _, tc := range []struct {
		cert, ca string
		usage    x509.ExtKeyUsage
		cn       string
		orgs     []string
	}{
		{n.KubeletServingCert, s.ServerCA, x509.ExtKeyUsageServerAuth, "system:node:node-a", []string{"system:nodes"}},
		{n.KubeletClientCert, s.ClientCA, x509.ExtKeyUsageClientAuth, "system:node:node-a", []string{"system:nodes"}},
		{n.KubeProxyCert, s.ClientCA, x509.ExtKeyUsageClientAuth, "system:kube-proxy", nil},
	} {
		c := verifyLeaf(t, tc.cert, tc.ca, tc.usage)
		if c.Subject.CommonName != tc.cn || !slices.Equal(c.Subject.Organization, tc.orgs) {
			t.Errorf("%s: subject %v, want CN=%s O=%v", tc.cert, c.Subject, tc.cn, tc.orgs)
		}
		if m := fileMode(t, strings.TrimSuffix(tc.cert, ".crt")+".key"); m != 0o600 {
			t.Errorf("key of %s has mode %o", tc.cert, m)
		}
	}
	c := readCert(t, n.KubeletServingCert)
	if !slices.Equal(slices.Sorted(slices.Values(c.DNSNames)), []string{"localhost", "node-a"}) {
		t.Errorf("kubelet serving DNS SANs %v", c.DNSNames)
	}
	for _, host := range []string{"node-a", "localhost", "127.0.0.1", "192.0.2.10", "2001:db8::10"} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: caPool(t, s.ServerCA), DNSName: host}); err != nil {
			t.Errorf("kubelet serving certificate not valid for %s: %v", host, err)
		}
	}
	if len(c.IPAddresses) != 3 {
		t.Errorf("kubelet serving IP SANs %v, want 127.0.0.1 and the two node IPs", c.IPAddresses)
	}
	if m := fileMode(t, n.Dir); m != 0o700 {
		t.Errorf("%s: mode %o", n.Dir, m)
	}
}

func TestEnsureNodeReusesAndRenewsOnlyWhatItMust(t *testing.T) {
	s := mustEnsureControlPlane(t, testControlPlaneOptions(t))
	opts := testNodeOptions(s)
	n := mustEnsureNode(t, s, opts)

	before := snapshot(t, n.Dir)
	mustEnsureNode(t, s, opts)
	if diff := changed(before, snapshot(t, n.Dir)); len(diff) > 0 {
		t.Errorf("second EnsureNode changed %v", diff)
	}

	opts.NodeIPs = append(opts.NodeIPs, net.ParseIP("192.0.2.99"))
	mustEnsureNode(t, s, opts)
	want := map[string]bool{"serving-kubelet.crt": true, "serving-kubelet.key": true}
	if diff := changed(before, snapshot(t, n.Dir)); !mapsEqual(diff, want) {
		t.Errorf("new node IP changed %v, want %v", diff, want)
	}

	// A renamed node is a different identity: every certificate naming it is re-issued.
	before = snapshot(t, n.Dir)
	opts.NodeName = "node-b"
	mustEnsureNode(t, s, opts)
	want = map[string]bool{"serving-kubelet.crt": true, "serving-kubelet.key": true,
		"client-kubelet.crt": true, "client-kubelet.key": true}
	if diff := changed(before, snapshot(t, n.Dir)); !mapsEqual(diff, want) {
		t.Errorf("renamed node changed %v, want %v", diff, want)
	}
	if cn := readCert(t, n.KubeletClientCert).Subject.CommonName; cn != "system:node:node-b" {
		t.Errorf("kubelet client CN %s after rename", cn)
	}

	before = snapshot(t, n.Dir)
	setClock(t, time.Now().Add(300*24*time.Hour))
	mustEnsureNode(t, s, opts)
	want = map[string]bool{"serving-kubelet.crt": true, "serving-kubelet.key": true,
		"client-kubelet.crt": true, "client-kubelet.key": true,
		"client-kube-proxy.crt": true, "client-kube-proxy.key": true}
	if diff := changed(before, snapshot(t, n.Dir)); !mapsEqual(diff, want) {
		t.Errorf("aged node changed %v, want %v", diff, want)
	}
	verifyLeaf(t, n.KubeletServingCert, s.ServerCA, x509.ExtKeyUsageServerAuth)
}

// remoteSigner stands in for the supervisor: the request and answer cross a JSON boundary,
// as they will over the network, and it counts its calls.
type remoteSigner struct {
	s     *ControlPlane
	calls int
	fail  bool
}

func (r *remoteSigner) sign(req NodeCertRequest) (*NodeCerts, error) {
	r.calls++
	if r.fail {
		return nil, errors.New("supervisor unreachable")
	}
	var wire NodeCertRequest
	if err := roundTrip(req, &wire); err != nil {
		return nil, err
	}
	certs, err := r.s.SignNodeCerts(wire)
	if err != nil {
		return nil, err
	}
	var out NodeCerts
	return &out, roundTrip(certs, &out)
}

func roundTrip(in, out any) error {
	data, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, out)
}

func TestJoiningNodeFlow(t *testing.T) {
	s := mustEnsureControlPlane(t, testControlPlaneOptions(t))
	opts := NodeOptions{Dir: t.TempDir(), CredDir: t.TempDir(), APIServerURL: "https://192.0.2.1:6443", NodeName: "edge-1"}
	signer := &remoteSigner{s: s}

	n, err := ensureNode(opts, signer.sign)
	if err != nil {
		t.Fatal(err)
	}
	if signer.calls != 1 {
		t.Errorf("first start signed %d times, want once for all three", signer.calls)
	}
	verifyLeaf(t, n.KubeletClientCert, n.ClientCA, x509.ExtKeyUsageClientAuth)
	verifyLeaf(t, n.KubeletServingCert, n.ServerCA, x509.ExtKeyUsageServerAuth)
	if filepath.Dir(n.KubeletKubeconfig) != opts.CredDir {
		t.Errorf("kubelet kubeconfig in %s, want CredDir", n.KubeletKubeconfig)
	}

	// A restart with nothing due does not need the server at all.
	signer.fail = true
	if _, err := ensureNode(opts, signer.sign); err != nil || signer.calls != 1 {
		t.Errorf("restart: err %v, %d sign calls; want no call", err, signer.calls)
	}

	// A renewal the server cannot sign leaves the still-valid pair as it was.
	before := snapshot(t, n.Dir)
	setClock(t, time.Now().Add(300*24*time.Hour))
	if _, err := ensureNode(opts, signer.sign); err == nil {
		t.Fatal("renewal without a signer succeeded")
	}
	if diff := changed(before, snapshot(t, n.Dir)); len(diff) > 0 {
		t.Errorf("failed renewal changed %v", diff)
	}
}

func TestSignNodeCertsImposesIdentity(t *testing.T) {
	s := mustEnsureControlPlane(t, testControlPlaneOptions(t))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// A node asking to be an admin gets a node certificate anyway.
	greedy, err := certutil.MakeCSR(key, &pkix.Name{CommonName: "system:admin", Organization: []string{"system:masters"}},
		[]string{"kubernetes"}, []net.IP{net.ParseIP("10.43.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	certs, err := s.SignNodeCerts(NodeCertRequest{NodeName: "edge-2", KubeletClientCSR: greedy, KubeletServingCSR: greedy})
	if err != nil {
		t.Fatal(err)
	}
	if certs.KubeProxy != nil || len(certs.ServerCA) == 0 || len(certs.ClientCA) == 0 {
		t.Errorf("unrequested certificate returned, or CA missing")
	}
	for _, pemBytes := range [][]byte{certs.KubeletClient, certs.KubeletServing} {
		got, err := certutil.ParseCertsPEM(pemBytes)
		if err != nil {
			t.Fatal(err)
		}
		c := got[0]
		if c.Subject.CommonName != "system:node:edge-2" || !slices.Equal(c.Subject.Organization, []string{"system:nodes"}) ||
			slices.Contains(c.DNSNames, "kubernetes") || !key.PublicKey.Equal(c.PublicKey) {
			t.Errorf("signed %v %v %v; want the node identity on the CSR's key", c.Subject, c.DNSNames, c.IPAddresses)
		}
	}

	// A CSR whose signature does not match its key proves nothing and is refused.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tampered, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, other)
	if err != nil {
		t.Fatal(err)
	}
	tampered[len(tampered)-5] ^= 0xff // inside the signature
	for name, bad := range map[string][]byte{
		"garbage":       []byte("junk"),
		"a certificate": certs.ClientCA,
		"bad signature": pemCSR(tampered),
	} {
		if _, err := s.SignNodeCerts(NodeCertRequest{NodeName: "edge-2", KubeProxyCSR: bad}); err == nil {
			t.Errorf("%s accepted as a CSR", name)
		}
	}
	if _, err := s.SignNodeCerts(NodeCertRequest{KubeProxyCSR: greedy}); err == nil {
		t.Error("request without node name accepted")
	}
}

func pemCSR(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: certutil.CertificateRequestBlockType, Bytes: der})
}

func TestWriteNodeCertsRefusesJunk(t *testing.T) {
	dir := t.TempDir()
	if err := WriteNodeCerts(dir, &NodeCerts{KubeletServing: []byte("junk")}); err == nil {
		t.Fatal("junk written as a certificate")
	}
	if _, err := os.Stat(filepath.Join(dir, "serving-kubelet.crt")); !os.IsNotExist(err) {
		t.Errorf("junk reached the disk: %v", err)
	}
}
