package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// modulePath is ketch's Go module.
const modulePath = "github.com/ketch-k8s/ketch"

// RepoRoot is the root of the checkout that holds the working directory: the nearest directory
// above it whose go.mod is ketch's (go test runs in the package's directory). The source path
// from runtime.Caller would not do: the Makefile builds with -trimpath.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module "+modulePath+"\n")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no %s checkout above %s", modulePath, dir)
		}
	}
}

// BuildGo builds the program pkg (./path) of the repository at repo as a static binary at out,
// for images that hold nothing else. flags go to `go build` (such as -ldflags=-s -w).
func BuildGo(ctx context.Context, repo, pkg, out string, flags ...string) error {
	// Under `go run` PATH may lack go; the toolchain that built this program has one.
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	args := append(append([]string{"build", "-trimpath"}, flags...), "-o", out, pkg)
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}
