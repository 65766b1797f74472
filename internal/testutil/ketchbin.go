// Package testutil holds helpers shared by tests that exercise the real ketch binary.
package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
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

// RepoRoot returns the root of this checkout: the nearest directory above the working
// directory (go test runs in the package's directory) whose go.mod is ketch's. The source
// path from runtime.Caller would not do: the Makefile builds with -trimpath.
func RepoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		panic(fmt.Sprintf("testutil: working directory: %v", err))
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module "+modulePath+"\n")) {
			return d
		}
		if filepath.Dir(d) == d {
			panic(fmt.Sprintf("testutil: no %s checkout above %s", modulePath, dir))
		}
	}
}

const modulePath = "github.com/ketch-k8s/ketch"
