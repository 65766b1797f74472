package main

import (
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary re-executes itself as pause when this is set, so the tests drive the real
// main() as a separate process without a build step.
const runAsPause = "KETCH_PAUSE_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runAsPause) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestExitsZeroOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), runAsPause+"=1")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// SIGCHLD first: it must be survived, not treated as a stop signal.
			time.Sleep(200 * time.Millisecond)
			_ = cmd.Process.Signal(syscall.SIGCHLD)
			time.Sleep(100 * time.Millisecond)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("pause exited with %v, want 0; stderr: %s", err, stderr.String())
				}
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("pause did not exit on signal")
			}
			if !strings.Contains(stderr.String(), "Shutting down, got signal") {
				t.Errorf("stderr %q lacks the shutdown message", stderr.String())
			}
		})
	}
}

func TestReapCollectsExitedChildren(t *testing.T) {
	// Raw ForkExec, not os/exec: reap must be the only one waiting for these children.
	var pids []int
	for range 3 {
		pid, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
		if err != nil {
			t.Skipf("cannot start /bin/true: %v", err)
		}
		pids = append(pids, pid)
	}
	var reaped []int
	deadline := time.Now().Add(10 * time.Second)
	for len(reaped) < len(pids) && time.Now().Before(deadline) {
		reaped = append(reaped, reap()...)
		time.Sleep(20 * time.Millisecond)
	}
	slices.Sort(pids)
	slices.Sort(reaped)
	if !slices.Equal(pids, reaped) {
		t.Fatalf("reaped %v, want %v", reaped, pids)
	}
}
