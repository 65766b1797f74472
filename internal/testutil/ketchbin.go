// Package testutil holds helpers shared by tests that exercise the real ketch binary. It is the
// testing-flavoured layer over internal/harness, which drives the processes: these helpers
// fail the test where the harness returns an error, and clean up when the test ends.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ketch-k8s/ketch/internal/harness"
)

var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
	buildOut  []byte
)

// KetchBinary returns the path of the ketch binary under test: $KETCH_BIN when set (make test
// sets it to bin/ketch), otherwise a binary built once per test process from this checkout.
func KetchBinary(t testing.TB) string {
	t.Helper()
	SkipIfShort(t, "runs the ketch binary")
	if p := os.Getenv("KETCH_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatalf("KETCH_BIN=%q: %v", p, err)
		}
		if _, err := os.Stat(abs); err != nil {
			t.Fatalf("KETCH_BIN=%q: %v (run make first)", p, err)
		}
		return abs
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ketch-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		// Tests also run the binary as an unprivileged user.
		if buildErr = os.Chmod(dir, 0o755); buildErr != nil {
			return
		}
		builtPath = filepath.Join(dir, "ketch")
		cmd := exec.Command("go", "build", "-o", builtPath, "./cmd/ketch")
		cmd.Dir = RepoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building ketch: %v\n%s", buildErr, buildOut)
	}
	return builtPath
}

// Main runs a package's tests and removes the binary KetchBinary built, if any. Use it as
// TestMain in packages that call KetchBinary.
func Main(m *testing.M) {
	code := m.Run()
	if builtPath != "" {
		os.RemoveAll(filepath.Dir(builtPath))
	}
	os.Exit(code)
}

// RepoRoot returns the root of this checkout (see harness.RepoRoot); a test run outside of one
// cannot go on.
func RepoRoot() string {
	root, err := harness.RepoRoot()
	if err != nil {
		panic("testutil: " + err.Error())
	}
	return root
}
