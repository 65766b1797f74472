package main

import (
	"context"
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

// TestAsPID1 starts ketch as the first process of a new PID namespace, as docker run of a node
// image does: it says it runs ketch as its child, the child serves, and SIGTERM to PID 1 (docker
// stop) stops it cleanly, with the child's exit status 0.
func TestAsPID1(t *testing.T) {
	testutil.NeedsRoot(t, "makes a PID namespace")
	bin := testutil.KetchBinary(t)
	endpoint := "http://" + testutil.FreeLoopbackAddr(t)
	logPath := filepath.Join(t.TempDir(), "out.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "datastore", "--data-dir", t.TempDir(), "--listen-client-urls", endpoint)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := harness.WaitEtcd(ctx, endpoint, done); err != nil {
		cmd.Process.Kill()
		out, _ := os.ReadFile(logPath)
		t.Fatalf("ketch datastore as PID 1 did not serve: %v\n%s", err, out)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("PID 1 did not stop within 30 s of SIGTERM")
	}
	out, _ := os.ReadFile(logPath)
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0:\n%s", code, out)
	}
	if !strings.Contains(string(out), "ketch: running as PID 1: pid ") {
		t.Errorf("no PID 1 line:\n%s", out)
	}
}
