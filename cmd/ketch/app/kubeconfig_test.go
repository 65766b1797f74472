package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// TestKubeconfigCommand: ketch kubeconfig prints the server's admin kubeconfig with the
// certificates inline and the server URL asked for, and refuses a bad URL or a data dir with no
// server.
func TestKubeconfigCommand(t *testing.T) {
	dataDir := t.TempDir()
	tls, cred := filepath.Join(dataDir, "server", "tls"), filepath.Join(dataDir, "server", "cred")
	for _, d := range []string{tls, cred} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"server-ca.crt": "CA-BYTES", "client-admin.crt": "CERT-BYTES", "client-admin.key": "KEY-BYTES"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(tls, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	kubeconfig := `apiVersion: v1
kind: Config
clusters:
- name: default
  cluster: {server: "https://127.0.0.1:6443", certificate-authority: ` + filepath.Join(tls, "server-ca.crt") + `}
users:
- name: default
  user: {client-certificate: ` + filepath.Join(tls, "client-admin.crt") + `, client-key: ` + filepath.Join(tls, "client-admin.key") + `}
contexts:
- name: default
  context: {cluster: default, user: default}
current-context: default
`
	if err := os.WriteFile(filepath.Join(cred, "admin.kubeconfig"), []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		app := New()
		var out bytes.Buffer
		app.Writer = &out
		err := app.Run(append([]string{"ketch", "kubeconfig"}, args...))
		return out.String(), err
	}
	out, err := run("--data-dir", dataDir, "--server", "https://203.0.113.7:16443")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load([]byte(out))
	if err != nil {
		t.Fatalf("the output is not a kubeconfig: %v\n%s", err, out)
	}
	c, u := cfg.Clusters["default"], cfg.AuthInfos["default"]
	if c.Server != "https://203.0.113.7:16443" || string(c.CertificateAuthorityData) != "CA-BYTES" || c.CertificateAuthority != "" ||
		string(u.ClientCertificateData) != "CERT-BYTES" || string(u.ClientKeyData) != "KEY-BYTES" || u.ClientKey != "" {
		t.Errorf("kubeconfig not self-contained with the given server:\n%s", out)
	}
	if out, err := run("--data-dir", dataDir); err != nil || !strings.Contains(out, "https://127.0.0.1:6443") {
		t.Errorf("without --server: %v\n%s", err, out)
	}
	if _, err := run("--data-dir", dataDir, "--server", "http://x:6443"); err == nil || !strings.Contains(err.Error(), "must be an https URL") {
		t.Errorf("an http URL: %v", err)
	}
	if _, err := run("--data-dir", t.TempDir()); err == nil || !strings.Contains(err.Error(), "no server in") {
		t.Errorf("no server: %v", err)
	}
}
