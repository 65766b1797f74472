package config

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/kubernetes/pkg/util/taints"

	"github.com/ketch-k8s/ketch/pkg/token"
)

// Node is the settings every ketch node has, server or agent.
type Node struct {
	DataDir string
	// RunDir holds sockets and other runtime state that must not survive a reboot.
	RunDir          string
	NodeName        string
	NodeIPs         []net.IP
	NodeExternalIPs []net.IP
	Labels, Taints  []string
	// Extra component arguments, as "flag=value" without dashes; they override ketch's own.
	KubeletArgs   []string
	KubeProxyArgs []string
	// FlannelIface is the interface for traffic between nodes; empty: the node IP's.
	FlannelIface string
	// ResolvConf is the resolv.conf the user chose for pods with the Default DNS policy; empty:
	// the agent picks one (pkg/agent, podResolvConf).
	ResolvConf string
	Debug      bool
	// EnablePprof turns on Go's profiling handlers (/debug/pprof): kube-apiserver's on a server
	// (the API port, behind its authentication and RBAC) and the kubelet's on every node (its
	// port 10250, reached through the API's node proxy). Off by default, as k3s has it: a
	// profile shows memory and timing that no API user needs to see.
	EnablePprof bool
}

// NodeRaw is Node as given, before parsing.
type NodeRaw struct {
	DataDir, RunDir, NodeName, FlannelIface, ResolvConf string
	NodeIPs, NodeExternalIPs                            []string
	Labels, Taints                                      []string
	KubeletArgs, KubeProxyArgs                          []string
	Debug, EnablePprof                                  bool
}

// Paths are the node's files and directories.
func (n *Node) Paths() Paths { return Paths{DataDir: n.DataDir, RunDir: n.RunDir} }

// DebugVerbosity is klog's verbosity under --debug, for ketch and for every component: the
// kubelet applies a logging configuration of its own, which must say the same.
const DebugVerbosity = 2

// Verbosity is the klog verbosity the node's logs are written at.
func (n *Node) Verbosity() int { return Verbosity(n.Debug) }

// Verbosity is the klog verbosity of every ketch command: DebugVerbosity with --debug, else 0.
func Verbosity(debug bool) int {
	if debug {
		return DebugVerbosity
	}
	return 0
}

func parseNode(raw NodeRaw, fail func(string, ...any)) Node {
	n := Node{
		DataDir: raw.DataDir, RunDir: raw.RunDir, Labels: raw.Labels, Taints: raw.Taints,
		KubeletArgs: raw.KubeletArgs, KubeProxyArgs: raw.KubeProxyArgs, FlannelIface: raw.FlannelIface, Debug: raw.Debug,
		EnablePprof: raw.EnablePprof,
	}
	if raw.ResolvConf != "" {
		n.ResolvConf = checkResolvConf(raw.ResolvConf, fail)
	}
	for _, dir := range []*string{&n.DataDir, &n.RunDir} {
		if *dir == "" {
			fail("--data-dir and --run-dir must not be empty")
			continue
		}
		abs, err := filepath.Abs(*dir)
		if err != nil {
			fail("directory %q is not usable: %v", *dir, err)
			continue
		}
		*dir = abs
	}
	n.NodeName = strings.ToLower(raw.NodeName)
	if n.NodeName == "" {
		host, err := os.Hostname()
		if err != nil {
			fail("no --node-name given and the hostname is unknown: %v", err)
		}
		n.NodeName = strings.ToLower(host)
	}
	if msgs := validation.IsDNS1123Subdomain(n.NodeName); len(msgs) > 0 {
		fail("--node-name %q is not a valid Kubernetes node name: %s", n.NodeName, strings.Join(msgs, "; "))
	}
	n.NodeIPs = parseIPs(raw.NodeIPs, "--node-ip", fail)
	if len(raw.NodeIPs) == 0 {
		ip, err := defaultRouteIP()
		if err != nil {
			fail("no --node-ip given and %v", err)
		} else {
			n.NodeIPs = []net.IP{ip}
		}
	}
	n.NodeExternalIPs = parseIPs(raw.NodeExternalIPs, "--node-external-ip", fail)
	for _, l := range n.Labels {
		k, v, ok := strings.Cut(l, "=")
		msgs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...)
		if !ok || len(msgs) > 0 {
			fail("--node-label %q must be key=value with a valid label key and value: %s", l, strings.Join(msgs, "; "))
		}
	}
	if len(n.Taints) > 0 {
		if _, _, err := taints.ParseTaints(n.Taints); err != nil {
			fail("--node-taint: %v (the form is key=value:NoSchedule, PreferNoSchedule or NoExecute)", err)
		}
	}
	checkArgs(map[string][]string{"--kubelet-arg": n.KubeletArgs, "--kube-proxy-arg": n.KubeProxyArgs}, fail)
	return n
}

func parseIPs(in []string, flag string, fail func(string, ...any)) []net.IP {
	var out []net.IP
	for _, ip := range in {
		parsed := net.ParseIP(ip)
		if parsed == nil {
			fail("%s %q is not an IP address", flag, ip)
			continue
		}
		out = append(out, parsed)
	}
	return out
}

func checkArgs(flags map[string][]string, fail func(string, ...any)) {
	for name, args := range flags {
		for _, a := range args {
			if k, _, _ := strings.Cut(a, "="); k == "" || strings.HasPrefix(k, "-") {
				fail("%s %q must be flag=value, without leading dashes", name, a)
			}
		}
	}
}

// readToken is --token, else the content of --token-file.
func readToken(value, file string, fail func(string, ...any)) string {
	if value != "" || file == "" {
		return strings.TrimSpace(value)
	}
	t, err := token.ReadFile(file)
	if err != nil {
		fail("--token-file: %v", err)
	}
	return t
}

// defaultRouteIP is the address the kernel would use to reach the outside, which is what users
// mean by "this node's IP" on a single-homed machine. Connecting a UDP socket sends nothing.
func defaultRouteIP() (net.IP, error) {
	c, err := net.Dial("udp4", "203.0.113.1:9")
	if err == nil {
		defer c.Close()
		if ip := c.LocalAddr().(*net.UDPAddr).IP; !ip.IsLoopback() {
			return ip, nil
		}
	}
	return nil, errors.New("no default route to take the node IP from; pass --node-ip")
}

// checkResolvConf makes sure a --resolv-conf names a readable file with a nameserver, and
// returns its absolute path: the kubelet reads it for every pod it starts.
func checkResolvConf(path string, fail func(string, ...any)) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		fail("--resolv-conf %q: %v", path, err)
		return ""
	}
	b, err := os.ReadFile(abs)
	if err != nil {
		fail("--resolv-conf: %v", err)
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
			return abs
		}
	}
	fail("--resolv-conf %s has no nameserver line: pods would resolve nothing outside the cluster", abs)
	return ""
}
