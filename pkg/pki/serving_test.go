package pki

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
)

// TestEnsureServing: a new pair verifies against the server CA for its name; a good pair is kept
// as it is; a pair without a name it needs, or a damaged one, is replaced and the reason given.
func TestEnsureServing(t *testing.T) {
	s := mustEnsureControlPlane(t, testControlPlaneOptions(t))
	names := []string{"ketch-dashboard.kube-system.svc", "ketch-dashboard.kube-system.svc.cluster.local"}
	cert, key, why, err := s.EnsureServing(names, nil, nil)
	if err != nil || why != "no certificate yet" {
		t.Fatalf("first: %q, %v", why, err)
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(s.ServerCA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: names[1]}); err != nil {
		t.Errorf("the new certificate does not verify for %s: %v", names[1], err)
	}

	if c2, k2, why, err := s.EnsureServing(names, cert, key); err != nil || why != "" || string(c2) != string(cert) || string(k2) != string(key) {
		t.Errorf("a good pair was not kept: %q, %v", why, err)
	}
	if _, _, why, err := s.EnsureServing(append(names, "dashboard.example"), cert, key); err != nil || !strings.Contains(why, "lacks the name dashboard.example") {
		t.Errorf("a pair without a name: %q, %v", why, err)
	}
	if _, _, why, err := s.EnsureServing(names, cert, []byte("not a key")); err != nil || !strings.Contains(why, "its key does not parse") {
		t.Errorf("a damaged key: %q, %v", why, err)
	}
	if _, _, _, err := s.EnsureServing(nil, nil, nil); err == nil {
		t.Error("no names: no error")
	}
}
