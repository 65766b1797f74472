package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ketch-k8s/ketch/internal/testutil"
)

// TestShellScripts checks the scripts install.sh installs, install.sh itself and
// ketch-docker-cluster.sh, as POSIX sh:
// shellcheck in sh mode, and a parse by each shell they must run under (dash, busybox ash).
// TestInstall and TestDockerCluster run them for real.
func TestShellScripts(t *testing.T) {
	testutil.SkipIfShort(t, "needs shellcheck, dash and busybox (scripts/install-deps.sh)")
	repo := testutil.RepoRoot()
	scripts := []string{filepath.Join(repo, "install.sh"), filepath.Join(repo, "scripts", "ketch-docker-cluster.sh")}
	more, err := filepath.Glob(filepath.Join(repo, "package", "*.sh"))
	if err != nil {
		t.Fatal(err)
	}
	scripts = append(scripts, more...)
	if out, err := exec.Command("shellcheck", append([]string{"--shell=sh", "--severity=style"}, scripts...)...).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
	// ketch-killall.sh refuses arguments before it touches anything; in a network namespace of
	// its own, so that a broken refusal could not reach this host's links and iptables chains.
	dir := t.TempDir()
	cmd := exec.Command("unshare", "--net", filepath.Join(repo, "package", "ketch-killall.sh"), "--help")
	cmd.Env = append(cmd.Environ(), "KETCH_DATA_DIR="+dir, "KETCH_RUN_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), "takes no arguments") || strings.Contains(string(out), "stopped ketch") {
		t.Errorf("ketch-killall.sh --help: exit %d (%v), want 2 and a usage:\n%s", code, err, out)
	}
	for _, shell := range [][]string{{"dash"}, {"busybox", "sh"}} {
		for _, s := range scripts {
			args := append(append([]string{}, shell[1:]...), "-n", s)
			if out, err := exec.Command(shell[0], args...).CombinedOutput(); err != nil {
				t.Errorf("%v -n %s: %v\n%s", shell, s, err, out)
			}
		}
	}
}
