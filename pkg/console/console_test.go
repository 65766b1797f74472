package console

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain runs the crash test's child: it opens a console with a log file, as a long-running
// command does, and then panics.
func TestMain(m *testing.M) {
	if logFile := os.Getenv("CONSOLE_TEST_CRASH_LOG"); logFile != "" {
		c, err := Open(logFile, false, time.Now())
		if err != nil {
			panic(err)
		}
		c.Printf("started")
		panic("a component's bug")
	}
	os.Exit(m.Run())
}

// TestCrashShowsOnTheTerminal: once stderr goes to the log file, a fatal panic is still shown on
// the terminal (and kept in the log), not only written where the user does not look.
func TestCrashShowsOnTheTerminal(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "ketch.log")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CONSOLE_TEST_CRASH_LOG="+logFile)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the child did not crash:\n%s", out)
	}
	if !strings.Contains(string(out), "ketch: started") || !strings.Contains(string(out), "panic: a component's bug") {
		t.Errorf("the terminal did not show the panic:\n%s", out)
	}
	logged, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logged), "panic: a component's bug") {
		t.Errorf("the log file did not keep the panic:\n%s", logged)
	}
}
