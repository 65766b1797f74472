package harness

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Cluster is a cluster of scripts/ketch-cluster.sh: servers and agents on this machine, each
// node in its own network namespace, as if each were a host of its own; optionally with an
// external etcd cluster whose members are such "hosts" too.
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
	// Servers is how many nodes run `ketch server`: nodes 1..Servers (0: the script's default,
	// 1). Without Etcd and more than one, they share an embedded etcd that node 1 initialises.
	Servers int
	// Etcd is the number of external etcd members (0: none), member j at Subnet.(200+j), which
	// every server uses as its datastore; EtcdBin is the etcd binary they run (see
	// internal/testutil/etcdserver).
	Etcd    int
	EtcdBin string
}

// The script's own time limits for `up --wait` (seconds) and `down`, and ours around them. The
// servers after the first join one after the other, each taking up to minutes on a small
// machine: both `up` limits grow with their number.
const (
	clusterWaitSecs          = 240
	clusterWaitPerServerSecs = 90
	clusterUpTime            = 5 * time.Minute
	clusterUpPerServer       = 2 * time.Minute
	clusterUpEtcd            = time.Minute // the script waits up to 60 s for the members
	clusterAddTime           = 4 * time.Minute
	clusterDownTime          = 3 * time.Minute
)

func (c *Cluster) servers() int { return max(c.Servers, 1) }

func (c *Cluster) upTime() time.Duration {
	d := clusterUpTime + time.Duration(c.servers()-1)*clusterUpPerServer
	if c.Etcd > 0 {
		d += clusterUpEtcd
	}
	return d
}

func (c *Cluster) waitSecs() int { return clusterWaitSecs + (c.servers()-1)*clusterWaitPerServerSecs }

// Node i's name, IP, and dirs as the script lays them out: its run dir in /run, and below Dir
// its node dir, which holds its data dir, pid file and output.
func (c *Cluster) Node(i int) string    { return fmt.Sprintf("%s-%d", c.Name, i) }
func (c *Cluster) NodeIP(i int) string  { return fmt.Sprintf("%s.%d", c.Subnet, 10+i) }
func (c *Cluster) RunDir(i int) string  { return "/run/ketch-" + c.Node(i) }
func (c *Cluster) NodeDir(i int) string { return filepath.Join(c.Dir, c.Node(i)) }
func (c *Cluster) DataDir(i int) string { return filepath.Join(c.NodeDir(i), "data") }

// EtcdMember is etcd member j's name (also its network namespace's); the script's commands take
// it as a NODE.
func (c *Cluster) EtcdMember(j int) string { return fmt.Sprintf("%s-e%d", c.Name, j) }

// EtcdIP is etcd member j's address.
func (c *Cluster) EtcdIP(j int) string { return fmt.Sprintf("%s.%d", c.Subnet, 200+j) }

// EtcdEndpoints are the members' client URLs, as the servers get them.
func (c *Cluster) EtcdEndpoints() []string {
	eps := make([]string, c.Etcd)
	for j := range eps {
		eps[j] = "https://" + net.JoinHostPort(c.EtcdIP(j+1), "2379")
	}
	return eps
}

// EtcdPKIDir holds the etcd cluster's TLS files: ca.crt, the members' e<j>.crt/.key (server
// and client auth) and the servers' client.crt/.key.
func (c *Cluster) EtcdPKIDir() string { return filepath.Join(c.Dir, "etcd-pki") }

// EtcdOutput is the file etcd member j writes its stdout and stderr to, across restarts.
func (c *Cluster) EtcdOutput(j int) string {
	return filepath.Join(c.Dir, c.EtcdMember(j), "etcd.out")
}

// PID is node i's ketch process as the script recorded it when it last started the node.
func (c *Cluster) PID(i int) (int, error) {
	b, err := os.ReadFile(filepath.Join(c.NodeDir(i), "pid"))
	if err != nil {
		return 0, fmt.Errorf("%s's pid file: %w", c.Node(i), err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s's pid file: %w", c.Node(i), err)
	}
	return pid, nil
}

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

// Up brings the cluster up and waits until every node is Ready. serverArgs go to every `ketch
// server`.
func (c *Cluster) Up(ctx context.Context, serverArgs ...string) error {
	ctx, cancel := context.WithTimeout(ctx, c.upTime())
	defer cancel()
	args := []string{"up", "--dir", c.Dir, "--nodes", fmt.Sprint(c.Nodes), "--name", c.Name, "--subnet", c.Subnet,
		"--ketch", c.Bin, "--wait", "--timeout", fmt.Sprint(c.waitSecs())}
	if c.Servers > 0 {
		args = append(args, "--servers", fmt.Sprint(c.Servers))
	}
	if c.Etcd > 0 {
		args = append(args, "--etcd", fmt.Sprint(c.Etcd))
	}
	if c.EtcdBin != "" {
		args = append(args, "--etcd-bin", c.EtcdBin)
	}
	args = append(append(args, "--"), serverArgs...)
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

// StartNodeWith starts a node's ketch process (or an etcd member's etcd) again with args
// appended for this start only, such as --cluster-reset.
func (c *Cluster) StartNodeWith(ctx context.Context, node string, args ...string) error {
	cmd := []string{"start", "--dir", c.Dir, node}
	if len(args) > 0 {
		cmd = append(append(cmd, "--"), args...)
	}
	_, err := c.Run(ctx, nil, cmd...)
	return err
}

// KillNode SIGKILLs a node's ketch process (or an etcd member's etcd) and waits until it is
// gone: the machine dies. The node's containers keep running.
func (c *Cluster) KillNode(ctx context.Context, node string) error {
	_, err := c.Run(ctx, nil, "kill", "--dir", c.Dir, node)
	return err
}

var addedNode = regexp.MustCompile(`(?m)added \S+ as node ([0-9]+) `)

// AddNode adds node Nodes+1 to the running cluster and starts it: an agent, or a server that
// joins the cluster (the script waits until it has written its token). args go to its ketch
// command, for every start. It returns the new node's index, which Nodes is now (and counts a
// new server in Servers).
func (c *Cluster) AddNode(ctx context.Context, server bool, args ...string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, clusterAddTime)
	defer cancel()
	cmd := []string{"add", "--dir", c.Dir}
	if server {
		cmd = append(cmd, "--server")
	}
	if len(args) > 0 {
		cmd = append(append(cmd, "--"), args...)
	}
	out, err := c.Run(ctx, nil, cmd...)
	if err != nil {
		// The script records the node before it makes it, and down cleans up what it records:
		// follow the record, whether or not the node got that far.
		if n, rerr := c.recordedNodes(); rerr == nil {
			c.Nodes = n
		}
		return 0, err
	}
	m := addedNode.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("ketch-cluster.sh add: no \"added ... as node N\" in its output:\n%s", out)
	}
	i, err := strconv.Atoi(m[1])
	if err != nil {
		return 0, err
	}
	c.Nodes = i
	if server {
		c.Servers = c.servers() + 1
	}
	return i, nil
}

var recordedNodesLine = regexp.MustCompile(`(?m)^KC_NODES=([0-9]+)$`)

// recordedNodes is the number of nodes the script's DIR/cluster.env records.
func (c *Cluster) recordedNodes() (int, error) {
	env, err := os.ReadFile(filepath.Join(c.Dir, "cluster.env"))
	if err != nil {
		return 0, err
	}
	m := recordedNodesLine.FindSubmatch(env)
	if m == nil {
		return 0, fmt.Errorf("no KC_NODES in %s", filepath.Join(c.Dir, "cluster.env"))
	}
	return strconv.Atoi(string(m[1]))
}

// KubectlOn runs ketch kubectl with the admin kubeconfig in node i's network namespace, where
// a server serves the cluster at 127.0.0.1:6443: for when node 1 is down. It returns the
// combined output.
func (c *Cluster) KubectlOn(ctx context.Context, i int, args ...string) (string, error) {
	return c.Run(ctx, []string{fmt.Sprintf("KC_NODE=%d", i)}, append([]string{"kubectl", "--dir", c.Dir}, args...)...)
}
