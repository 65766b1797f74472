package pid1

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ketch-k8s/ketch/internal/testutil"
)

// The test binary becomes PID 1 of a new PID namespace (and a mount namespace, for its own
// /proc) and runs Run with a shell script as the child.
func TestMain(m *testing.M) {
	if script := os.Getenv("PID1_TEST_CHILD"); script != "" {
		os.Exit(Run("/bin/sh", []string{"sh", "-c", script}, os.Environ(), func(format string, a ...any) {
			fmt.Fprintf(os.Stderr, format+"\n", a...)
		}))
	}
	os.Exit(m.Run())
}

// asInit starts this test binary as PID 1 of new PID and mount namespaces, running script as its
// child with the namespace's own /proc.
func asInit(t *testing.T, script string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	testutil.NeedsRoot(t, "makes PID and mount namespaces")
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), "PID1_TEST_CHILD=mount --make-rprivate / && mount -t proc proc /proc && "+script)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// TestReapsOrphans: processes orphaned in the namespace are reaped (without it each would stay
// a zombie), and the child's exit status is PID 1's.
func TestReapsOrphans(t *testing.T) {
	cmd, out := asInit(t, `for i in 1 2 3 4 5; do (sleep 0.2 &); done
sleep 1
z=0
for f in /proc/[0-9]*/stat; do read -r s <"$f" 2>/dev/null || continue; s=${s##*) }; [ "${s%% *}" = Z ] && z=$((z+1)); done
echo "zombies: $z"
exit 7`)
	err := cmd.Wait()
	if cmd.ProcessState.ExitCode() != 7 {
		t.Fatalf("exit status %v, want the child's 7:\n%s", err, out)
	}
	if !strings.Contains(out.String(), "zombies: 0") {
		t.Errorf("orphans were not reaped:\n%s", out)
	}
}

// TestForwardsSignals: SIGTERM to PID 1 (docker stop) reaches the child, whose exit status PID 1
// returns; a child killed by a signal gives 128 plus its number, and PID 1 says so.
func TestForwardsSignals(t *testing.T) {
	cmd, out := asInit(t, `trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.05; done`)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "ready") {
		if time.Now().After(deadline) {
			t.Fatalf("the child did not start:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if cmd.ProcessState.ExitCode() != 3 || !strings.Contains(out.String(), "got TERM") {
		t.Errorf("after SIGTERM: exit status %d, want 3 from the child's trap:\n%s", cmd.ProcessState.ExitCode(), out)
	}

	cmd, out = asInit(t, `kill -KILL $$`)
	cmd.Wait()
	if cmd.ProcessState.ExitCode() != 128+9 {
		t.Errorf("a child killed by SIGKILL: exit status %d, want 137:\n%s", cmd.ProcessState.ExitCode(), out)
	}
	// Nothing else says why the container stopped.
	if !strings.Contains(out.String(), "was killed by signal 9 (SIGKILL)") {
		t.Errorf("PID 1 did not say that the child was killed:\n%s", out)
	}
}
