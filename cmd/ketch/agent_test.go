package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ketch-k8s/ketch/internal/harness"
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
		{"token without K10", []string{"--server", "https://192.0.2.1:6443", "--token", "abcdef.0123456789abcdef"}, []string{"the join token: an agent token starts with K10"}},
		{"damaged hash", []string{"--server", "https://192.0.2.1:6443", "--token", "K10abc::server:secret-123"}, []string{"after K10 it must have 64 hex digits"}},
		{"missing token file", []string{"--server", "https://192.0.2.1:6443", "--token-file", "/nonexistent/token"}, []string{"--token-file: reading the token file"}},
		{"bad label and taint", []string{"--server", "https://192.0.2.1:6443", "--token-file", tokenFile, "--node-label", "no-value", "--node-taint", "k=v:Sometimes"}, []string{`--node-label "no-value" must be key=value`, "--node-taint"}},
		{"bad node ip", []string{"--server", "https://192.0.2.1:6443", "--token-file", tokenFile, "--node-ip", "10.0.0.300"}, []string{`--node-ip "10.0.0.300" is not an IP address`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := t.TempDir()
			config := emptyConfig(t)
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

// TestAgentRunDirInUse: an agent started on the run dir of a running node is refused before it
// touches anything there. With the default paths this is an agent started on a server's host:
// it used to replace the server's containerd socket and break its node.
func TestAgentRunDirInUse(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the host check (run as root) comes before the dirs")
	}
	hash := strings.Repeat("ab", 32)
	dataDir, runDir := t.TempDir(), t.TempDir()
	pid := holdLock(t, runDir)
	config := emptyConfig(t)
	cmd := exec.Command(testutil.KetchBinary(t), "agent", "--data-dir", dataDir, "--run-dir", runDir, "--config", config,
		"--node-name", "test-node", "--node-ip", "192.0.2.10", "--server", "https://192.0.2.1:6443", "--token", "K10"+hash+"::server:secret-123")
	out, err := cmd.CombinedOutput()
	want := "ketch: run dir " + runDir + " is in use by another running ketch (pid " + pid + "); stop it or pass another --run-dir"
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("ketch agent: %v, want %q:\n%s", err, want, out)
	}
	for _, dir := range []string{dataDir, runDir} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.Name() != "ketch.pid" {
				t.Errorf("%s has %s: the refused agent started something", dir, e.Name())
			}
		}
	}
	if b, _ := os.ReadFile(filepath.Join(runDir, "ketch.pid")); string(b) != pid+"\n" {
		t.Errorf("the holder's ketch.pid now holds %q", b)
	}
}

// TestAgentStopsWhileJoining: SIGTERM to an agent that is still waiting for its server stops it
// within a few seconds, cleanly, saying what it was waiting for.
func TestAgentStopsWhileJoining(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: an agent runs only as root")
	}
	// The agent's fixed ports (the kubelet's, the load balancer's) must be free.
	testutil.LockHost(t)
	// A server that accepts connections and never answers: the agent waits for it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	server := "https://" + l.Addr().String()
	hash := strings.Repeat("ab", 32)
	dataDir, runDir := t.TempDir(), filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(testutil.KetchBinary(t), "agent", "--data-dir", dataDir, "--run-dir", runDir, "--config", emptyConfig(t),
		"--node-name", "test-node", "--node-ip", "127.0.0.1", "--server", server, "--token", "K10"+hash+"::server:secret-123")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	p, err := harness.Start(cmd, syscall.SIGKILL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(syscall.SIGKILL, time.Second)
	// The agent has taken its dirs and waits for the server once its log file exists.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dataDir, "logs", "ketch.log")); err == nil {
			break
		}
		if time.Now().After(deadline) || p.Exited() {
			t.Fatalf("the agent did not start:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	stopCleanly(t, p, 10*time.Second, out.String)
	want := "ketch: stopping before the node started (it was waiting for the server at " + server + ")"
	if !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
}
