package pki

import (
	"crypto/x509"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	certutil "k8s.io/client-go/util/cert"
)

func testControlPlaneOptions(t *testing.T) ControlPlaneOptions {
	t.Helper()
	base := t.TempDir()
	return ControlPlaneOptions{
		Dir:           filepath.Join(base, "server", "tls"),
		CredDir:       filepath.Join(base, "server", "cred"),
		APIServerURL:  "https://127.0.0.1:6443",
		NodeName:      "node-a",
		NodeIPs:       []net.IP{net.ParseIP("192.0.2.10")},
		ServiceIP:     net.ParseIP("10.43.0.1"),
		ClusterDomain: "cluster.local",
		TLSSANs:       []string{"203.0.113.7", "ketch.example.com"},
	}
}

func mustEnsureControlPlane(t *testing.T, opts ControlPlaneOptions) *ControlPlane {
	t.Helper()
	s, err := EnsureControlPlane(opts)
	if err != nil {
		t.Fatalf("EnsureControlPlane: %v", err)
	}
	return s
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	certs, err := certutil.CertsFromFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return certs[0]
}

func caPool(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	pool, err := certutil.NewPool(path)
	if err != nil {
		t.Fatalf("reading CA %s: %v", path, err)
	}
	return pool
}

// verifyLeaf checks certPath chains to caPath for usage, at the package clock's time.
func verifyLeaf(t *testing.T, certPath, caPath string, usage x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	c := readCert(t, certPath)
	if _, err := c.Verify(x509.VerifyOptions{
		Roots: caPool(t, caPath), KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: now(),
	}); err != nil {
		t.Errorf("%s does not verify against %s for %v: %v", filepath.Base(certPath), filepath.Base(caPath), usage, err)
	}
	return c
}

// snapshot reads every regular file under dirs, for byte-for-byte comparisons.
func snapshot(t *testing.T, dirs ...string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			files[path] = data
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// changed lists the base names of files that differ between two snapshots.
func changed(before, after map[string][]byte) map[string]bool {
	out := map[string]bool{}
	for p, b := range before {
		if a, ok := after[p]; !ok || string(a) != string(b) {
			out[filepath.Base(p)] = true
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			out[filepath.Base(p)] = true
		}
	}
	return out
}

func setClock(t *testing.T, at time.Time) {
	t.Helper()
	old := now
	now = func() time.Time { return at }
	t.Cleanup(func() { now = old })
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}
