package e2e

import (
	"os/exec"
	"path/filepath"
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
	for _, shell := range [][]string{{"dash"}, {"busybox", "sh"}} {
		for _, s := range scripts {
			args := append(append([]string{}, shell[1:]...), "-n", s)
			if out, err := exec.Command(shell[0], args...).CombinedOutput(); err != nil {
				t.Errorf("%v -n %s: %v\n%s", shell, s, err, out)
			}
		}
	}
}
