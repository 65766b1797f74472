package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Cluster is a cluster of scripts/ketch-cluster.sh: a server and agents on this machine, each
// node in its own network namespace, as if each were a host of its own.
type Cluster struct {
	Script string // scripts/ketch-cluster.sh
	Bin    string // the ketch binary the nodes run
	// Dir is the script's --dir: the nodes' dirs and kubeconfig-host. Keep it short: socket
	// paths below it are limited to 108 bytes.
	Dir  string
	Name string // node i is Name-i; at most 4 characters, since link names are limited to 15
	// Subnet is the first three octets of the cluster's /24: node i has Subnet.(10+i).
	Subnet string
	Nodes  int
}

// The script's own time limits for `up --wait` (seconds) and `down`, and ours around them.
const (
	clusterWaitSecs = 240
	clusterUpTime   = 5 * time.Minute
	clusterDownTime = 3 * time.Minute
)

// Node i's name, IP, and dirs as the script lays them out: its run dir in /run, and below Dir
// its node dir, which holds its data dir, pid file and output.
func (c *Cluster) Node(i int) string    { return fmt.Sprintf("%s-%d", c.Name, i) }
func (c *Cluster) NodeIP(i int) string  { return fmt.Sprintf("%s.%d", c.Subnet, 10+i) }
func (c *Cluster) RunDir(i int) string  { return "/run/ketch-" + c.Node(i) }
func (c *Cluster) NodeDir(i int) string { return filepath.Join(c.Dir, c.Node(i)) }
func (c *Cluster) DataDir(i int) string { return filepath.Join(c.NodeDir(i), "data") }

// Socket is node i's containerd socket.
func (c *Cluster) Socket(i int) string {
	return filepath.Join(c.RunDir(i), "containerd", "containerd.sock")
}

// Kubeconfig reaches the server from this machine's network namespace.
func (c *Cluster) Kubeconfig() string { return filepath.Join(c.Dir, "kubeconfig-host") }

// Output is the file node i's ketch process writes its stdout and stderr to, across restarts.
func (c *Cluster) Output(i int) string { return filepath.Join(c.NodeDir(i), "ketch.out") }

// Run runs the script with args and env added to this process's environment, in its own
// process group (a terminal's Ctrl-C reaches only the caller, which then takes the cluster down
// in order). It returns the script's output, which the error holds too.
func (c *Cluster) Run(ctx context.Context, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.Script, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ketch-cluster.sh %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Up brings the cluster up and waits until every node is Ready. serverArgs go to `ketch
// server`.
func (c *Cluster) Up(ctx context.Context, serverArgs ...string) error {
	ctx, cancel := context.WithTimeout(ctx, clusterUpTime)
	defer cancel()
	args := append([]string{"up", "--dir", c.Dir, "--nodes", fmt.Sprint(c.Nodes), "--name", c.Name, "--subnet", c.Subnet,
		"--ketch", c.Bin, "--wait", "--timeout", fmt.Sprint(clusterWaitSecs), "--"}, serverArgs...)
	_, err := c.Run(ctx, nil, args...)
	return err
}

// Down takes the cluster down: every node's processes, mounts, namespace and links.
func (c *Cluster) Down(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, clusterDownTime)
	defer cancel()
	_, err := c.Run(ctx, nil, "down", "--dir", c.Dir)
	return err
}

// Exec runs a command on a node: in its network namespace.
func (c *Cluster) Exec(ctx context.Context, node string, cmd ...string) (string, error) {
	return c.Run(ctx, nil, append([]string{"exec", "--dir", c.Dir, node}, cmd...)...)
}

// StopNode stops a node's ketch process (SIGTERM, and waits for it to exit); its containers
// keep running.
func (c *Cluster) StopNode(ctx context.Context, node string) error {
	_, err := c.Run(ctx, nil, "stop", "--dir", c.Dir, node)
	return err
}

// StartNode starts a node's ketch process again on its dirs. The script returns half a second
// after the exec, without waiting for the node.
func (c *Cluster) StartNode(ctx context.Context, node string) error {
	_, err := c.Run(ctx, nil, "start", "--dir", c.Dir, node)
	return err
}
