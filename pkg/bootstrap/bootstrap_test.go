package bootstrap

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/pki"
)

func settings() config.ClusterSettings {
	return config.ClusterSettings{ClusterCIDR: "10.42.0.0/16", ServiceCIDR: "10.43.0.0/16", ClusterDNS: "10.43.0.10", ClusterDomain: "cluster.local", FlannelBackend: "vxlan"}
}

func newBundle(t *testing.T) (*Bundle, string) {
	t.Helper()
	dir := t.TempDir()
	if err := pki.EnsureSharedFiles(dir); err != nil {
		t.Fatal(err)
	}
	b, err := Read(dir, false, settings())
	if err != nil {
		t.Fatal(err)
	}
	return b, dir
}

func TestSealOpen(t *testing.T) {
	b, _ := newBundle(t)
	sealed, err := Seal(b, "the-cluster-secret")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), "PRIVATE KEY") {
		t.Fatal("the sealed bundle shows a key in the clear")
	}
	got, err := Open(sealed, "the-cluster-secret")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Files["server-ca.key"]) != string(b.Files["server-ca.key"]) || got.Settings != b.Settings {
		t.Fatal("the opened bundle differs from the sealed one")
	}
	if _, err := Open(sealed, "another-secret"); !errors.Is(err, ErrWrongToken) {
		t.Fatalf("opening with another token: %v, want ErrWrongToken", err)
	}
	sealed[len(sealed)/2] ^= 1
	if _, err := Open(sealed, "the-cluster-secret"); err == nil {
		t.Fatal("a damaged bundle opened")
	}
}

func TestWrite(t *testing.T) {
	b, _ := newBundle(t)
	dir := t.TempDir()
	if err := b.Write(dir, false); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(dir, "server-ca.key")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("server-ca.key: %v %v, want mode 0600", info, err)
	}
	// The same bundle again is fine: a restart, or a join retried.
	if err := b.Write(dir, false); err != nil {
		t.Fatal(err)
	}
	other, _ := newBundle(t)
	err := other.Write(dir, false)
	if !errors.Is(err, ErrOtherCluster) || !strings.Contains(err.Error(), "client-ca.crt") {
		t.Fatalf("writing another cluster's CAs over ours: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "server-ca.crt")); string(got) != string(b.Files["server-ca.crt"]) {
		t.Fatal("a refused write changed the CA")
	}
	if err := other.Write(dir, true); err != nil {
		t.Fatal(err)
	}
	bad := &Bundle{Files: map[string][]byte{"../escape": []byte("x")}}
	for _, name := range pki.SharedFiles {
		bad.Files[name] = []byte("x")
	}
	if err := bad.Write(t.TempDir(), false); err == nil || !strings.Contains(err.Error(), "unexpected file") {
		t.Fatalf("a bundle with a path outside the tls dir: %v", err)
	}
}
