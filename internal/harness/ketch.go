package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Ketch runs subcommands of a ketch binary as a user would.
type Ketch struct {
	Bin string
	// Kubeconfig, when set, is passed in KUBECONFIG, which `ketch kubectl` reads like kubectl.
	Kubeconfig string
}

func (k Ketch) command(ctx context.Context, stdin string, args []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, k.Bin, args...)
	cmd.Env = os.Environ()
	if k.Kubeconfig != "" {
		cmd.Env = append(cmd.Env, "KUBECONFIG="+k.Kubeconfig)
	}
	cmd.Stdin = strings.NewReader(stdin)
	return cmd
}

// Run runs `ketch args...` with stdin and returns its stdout and stderr, interleaved as it
// wrote them.
func (k Ketch) Run(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := k.command(ctx, stdin, args)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// Kubectl runs `ketch kubectl args...` and returns its stdout, for callers that parse it; what
// it printed goes into the error.
func (k Ketch) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := k.command(ctx, "", append([]string{"kubectl"}, args...))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("ketch kubectl %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// ImportImage imports an image archive into the containerd at socket with `ketch images
// import`.
func (k Ketch) ImportImage(ctx context.Context, socket, tarball string) error {
	if out, err := k.Run(ctx, "", "images", "import", "--address", socket, tarball); err != nil {
		return fmt.Errorf("ketch images import %s into %s: %w\n%s", tarball, socket, err, out)
	}
	return nil
}

// Killall runs package/ketch-killall.sh (script) for one node's dirs: it stops whatever of the
// node still runs and removes its mounts, pod networks and iptables chains.
func Killall(ctx context.Context, script, dataDir, runDir string) error {
	cmd := exec.CommandContext(ctx, script)
	cmd.Env = append(os.Environ(), KillallEnv(dataDir, runDir)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s for %s: %w\n%s", script, dataDir, err, out)
	}
	return nil
}

// KillallEnv is the environment that points ketch-killall.sh at one node's dirs.
func KillallEnv(dataDir, runDir string) []string {
	return []string{"KETCH_DATA_DIR=" + dataDir, "KETCH_RUN_DIR=" + runDir}
}
