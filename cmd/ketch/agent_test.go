package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ketch-k8s/ketch/internal/testutil"
)

// TestAgentBadInput runs `ketch agent` with settings it must refuse before it touches anything:
// each exits non-zero with a message that names the problem, and leaves the data dir empty.
func TestAgentBadInput(t *testing.T) {
	bin := testutil.KetchBinary(t)
	hash := strings.Repeat("ab", 32)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("K10"+hash+"::server:from-a-file-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no token", []string{"--server", "https://192.0.2.1:6443"}, []string{"ketch agent needs a join token: --token, --token-file or KETCH_TOKEN"}},
		{"no server", []string{"--token", "K10" + hash + "::server:secret-123"}, []string{`--server "" must be the server's https URL`}},
		{"http server", []string{"--server", "http://192.0.2.1:6443", "--token", "K10" + hash + "::server:secret-123"}, []string{"must be the server's https URL"}},
		{"token without K10", []string{"--server", "https://192.0.2.1:6443", "--token", "abcdef.0123456789abcdef"}, []string{"the join token: a join token starts with K10"}},
		{"damaged hash", []string{"--server", "https://192.0.2.1:6443", "--token", "K10abc::server:secret-123"}, []string{"after K10 it must have 64 hex digits"}},
		{"missing token file", []string{"--server", "https://192.0.2.1:6443", "--token-file", "/nonexistent/token"}, []string{"--token-file: reading the token file"}},
		{"bad label and taint", []string{"--server", "https://192.0.2.1:6443", "--token-file", tokenFile, "--node-label", "no-value", "--node-taint", "k=v:Sometimes"}, []string{`--node-label "no-value" must be key=value`, "--node-taint"}},
		{"bad node ip", []string{"--server", "https://192.0.2.1:6443", "--token-file", tokenFile, "--node-ip", "10.0.0.300"}, []string{`--node-ip "10.0.0.300" is not an IP address`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := t.TempDir()
			config := filepath.Join(t.TempDir(), "config.yaml")
			os.WriteFile(config, nil, 0o644)
			args := append([]string{"agent", "--data-dir", dataDir, "--run-dir", filepath.Join(t.TempDir(), "run"), "--config", config, "--node-name", "test-node"}, tc.args...)
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "KETCH_TOKEN=", "KETCH_URL=", "KETCH_TOKEN_FILE=")
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("ketch agent %v succeeded:\n%s", tc.args, out)
			}
			for _, want := range tc.want {
				if !strings.Contains(string(out), want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if entries, _ := os.ReadDir(dataDir); len(entries) > 0 {
				t.Errorf("the refused agent wrote to its data dir: %v", entries)
			}
		})
	}
}
