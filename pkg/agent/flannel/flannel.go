// Package flannel runs flannel in this process as the node's pod network between nodes: each
// node's pod subnet is its spec.podCIDR, published to the other nodes through annotations on
// its Node (flannel's kube subnet manager), and reached through a vxlan overlay or host-gw
// routes. The pods themselves are wired by the bridge CNI config ketch writes from the lease.
package flannel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-iptables/iptables"
	"github.com/flannel-io/flannel/pkg/backend"
	"github.com/flannel-io/flannel/pkg/ip"
	"github.com/flannel-io/flannel/pkg/subnet"
	"github.com/flannel-io/flannel/pkg/subnet/kube"
	flanneliptables "github.com/flannel-io/flannel/pkg/trafficmngr/iptables"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/agent/cni"
	"github.com/ketch-k8s/ketch/pkg/kubeclient"

	// Only these two backends: the others pull in cloud SDKs, IPsec or WireGuard daemons.
	_ "github.com/flannel-io/flannel/pkg/backend/hostgw"
	_ "github.com/flannel-io/flannel/pkg/backend/vxlan"
)

const (
	BackendVXLAN  = "vxlan"
	BackendHostGW = "host-gw"

	// NetConfFile is the name of flannel's network config in Config.ConfDir.
	NetConfFile = "net-conf.json"

	// The Node annotations flannel has always used, so that a node running upstream flannel
	// and one running ketch understand each other's leases.
	annotationPrefix = "flannel.alpha.coreos.com"

	// How often flannel re-checks that its iptables rules are still there (kube-proxy and
	// users flush chains); upstream's default.
	iptablesResyncSeconds = 5

	// RegisterNetwork reads the node from an informer cache that may trail the GET that saw
	// the node's pod CIDR; these retries cover that lag, not permanent errors.
	registerAttempts  = 10
	registerRetryWait = time.Second
)

// Config is one node's flannel.
type Config struct {
	NodeName string
	// Kubeconfig is the node's kubelet kubeconfig (identity system:node:<name>). The identity
	// must be allowed to list and watch all Nodes and to patch its own Node's status.
	Kubeconfig string
	// ClusterCIDR is the cluster's pod network; each node's subnet is its spec.podCIDR,
	// given by kube-controller-manager, and must lie inside it.
	ClusterCIDR *net.IPNet
	Backend     string // BackendVXLAN (default when empty) or BackendHostGW
	Iface       string // interface for inter-node traffic; "" means the one that holds NodeIP
	NodeIP      net.IP
	ConfDir     string // where flannel's net-conf.json is written (per node)
	SubnetFile  string // where flannel writes subnet.env (per node)
}

// Network is the node's lease once flannel runs.
type Network struct {
	Subnet *net.IPNet // this node's pod subnet
	MTU    int        // MTU pods must use (vxlan: the interface's MTU - 50)

	done chan struct{}
	err  error // written before done is closed
}

// Done is closed when flannel has stopped, because ctx ended or flannel failed.
func (n *Network) Done() <-chan struct{} { return n.done }

// Err says why flannel stopped; nil while it runs.
func (n *Network) Err() error {
	select {
	case <-n.done:
		return n.err
	default:
		return nil
	}
}

// Start registers the node with flannel's kube subnet manager, sets up the backend (the vxlan
// device flannel.<VNI> or host-gw routes), installs flannel's iptables rules (masquerade for
// traffic from the cluster CIDR leaving it, so pod-to-pod traffic between nodes keeps its
// source; ACCEPT in FORWARD for the cluster CIDR), writes SubnetFile, and returns once the
// node holds its lease. Flannel then keeps following the other nodes' leases until ctx ends.
//
// It waits, bounded only by ctx, for the node to be registered and given a pod CIDR.
// Nothing is torn down when ctx ends: like upstream flannel, the device, routes and rules stay
// so that running pods keep their network across a restart.
func Start(ctx context.Context, cfg Config) (_ *Network, err error) {
	v6, err := cfg.check()
	if err != nil {
		return nil, err
	}
	if err := checkIptables(v6); err != nil {
		return nil, err
	}
	extIface, err := lookupExtIface(cfg.Iface, cfg.NodeIP)
	if err != nil {
		return nil, err
	}
	confPath, err := writeNetConf(cfg)
	if err != nil {
		return nil, err
	}

	client, err := kubeclient.New(cfg.Kubeconfig)
	if err != nil {
		return nil, err
	}
	// Everything flannel starts runs on runCtx, so that a failed Start stops what it started.
	runCtx, cancel := context.WithCancel(ctx)
	// The subnet manager is made while the node waits for its pod CIDR: it checks whether its
	// Node informer has synced once at once, too early, and then only every second
	// (kube.NewSubnetManager), a second that would otherwise follow the wait. It starts once
	// the node may list Nodes: an agent can get here before a starting server has granted that,
	// and a refused informer would back off for longer than it saves.
	var (
		sm     subnet.Manager
		smErr  error
		smDone = make(chan struct{})
	)
	go func() {
		defer close(smDone)
		if smErr = waitListNodes(runCtx, client); smErr == nil {
			sm, smErr = newSubnetManager(runCtx, cfg, confPath)
		}
	}()
	defer func() {
		if err != nil {
			cancel()
			<-smDone
		}
	}()
	// Flannel fails at once when the node has no pod CIDR yet, and the node registers itself
	// only once the kubelet runs: wait here rather than fail.
	if _, err := cni.WaitPodCIDRs(ctx, client, cfg.NodeName); err != nil {
		return nil, err
	}
	// With a pod CIDR given, the server is up: a refusal now is for good.
	if err := checkListNodes(ctx, client, cfg.NodeName); err != nil {
		return nil, err
	}
	<-smDone
	if smErr != nil {
		return nil, smErr
	}
	netCfg, err := sm.GetNetworkConfig(runCtx)
	if err != nil {
		return nil, fmt.Errorf("flannel's network config: %w", err)
	}

	be, err := backend.NewManager(runCtx, sm, extIface).GetBackend(netCfg.BackendType)
	if err != nil {
		return nil, fmt.Errorf("flannel backend %s: %w", netCfg.BackendType, err)
	}
	var wg sync.WaitGroup
	bn, err := registerNetwork(runCtx, be, &wg, netCfg)
	if err != nil {
		return nil, err
	}
	l := bn.Lease()

	prev := readSubnetFile(cfg.SubnetFile)
	tm := &flanneliptables.IPTablesManager{}
	if err := tm.Init(runCtx); err != nil {
		return nil, fmt.Errorf("flannel's iptables manager: %w", err)
	}
	// The previous run's network and subnet let flannel delete masquerade rules it made for a
	// subnet this node no longer holds.
	if err := tm.SetupAndEnsureMasqRules(runCtx, netCfg.Network, prev.subnet, prev.network,
		netCfg.IPv6Network, prev.ipv6Subnet, prev.ipv6Network, l, iptablesResyncSeconds, false); err != nil {
		return nil, fmt.Errorf("flannel's masquerade rules: %w", err)
	}
	tm.SetupAndEnsureForwardRules(runCtx, netCfg.Network, netCfg.IPv6Network, iptablesResyncSeconds)
	// Flannel only logs iptables failures; without its rules pods lose traffic between nodes
	// silently, so check that the chains got their rules.
	if err := checkChains(v6); err != nil {
		return nil, err
	}

	// ipMasq true: FLANNEL_IPMASQ tells the CNI config not to masquerade as well.
	if err := sm.HandleSubnetFile(cfg.SubnetFile, netCfg, true, l.Subnet, l.IPv6Subnet, bn.MTU()); err != nil {
		return nil, fmt.Errorf("writing %s: %w", cfg.SubnetFile, err)
	}

	n := &Network{Subnet: l.Subnet.ToIPNet(), MTU: bn.MTU(), done: make(chan struct{})}
	if v6 {
		n.Subnet = l.IPv6Subnet.ToIPNet()
	}
	klog.InfoS("Flannel holds its lease", "node", cfg.NodeName, "backend", netCfg.BackendType,
		"subnet", n.Subnet, "mtu", n.MTU, "iface", extIface.IfaceName)

	ran := make(chan struct{})
	go func() {
		defer close(ran)
		bn.Run(runCtx)
	}()
	// Sets the node's NetworkUnavailable condition to False, as upstream flannel does. Nothing
	// in ketch sets it True, so a failure costs only the condition, not the network.
	if err := sm.CompleteLease(runCtx, l, &wg); err != nil && runCtx.Err() == nil {
		klog.ErrorS(err, "Setting the node's NetworkUnavailable condition", "node", cfg.NodeName)
	}

	go func() {
		<-ran
		if ctx.Err() != nil {
			n.err = context.Cause(ctx)
		} else {
			n.err = errors.New("flannel's backend stopped on its own")
			klog.ErrorS(n.err, "Flannel stopped", "node", cfg.NodeName)
		}
		cancel()
		wg.Wait()
		close(n.done)
	}()
	return n, nil
}

// check validates cfg, fills in the default backend and tells whether the network is IPv6.
func (cfg *Config) check() (v6 bool, err error) {
	switch {
	case cfg.NodeName == "":
		return false, errors.New("flannel: no node name")
	case cfg.Kubeconfig == "":
		return false, errors.New("flannel: no kubeconfig")
	case cfg.ClusterCIDR == nil:
		return false, errors.New("flannel: no cluster CIDR")
	case cfg.NodeIP == nil:
		return false, errors.New("flannel: no node IP")
	case cfg.ConfDir == "" || cfg.SubnetFile == "":
		return false, errors.New("flannel: no config dir or subnet file")
	}
	switch cfg.Backend {
	case "":
		cfg.Backend = BackendVXLAN
	case BackendVXLAN, BackendHostGW:
	default:
		return false, fmt.Errorf("flannel: unsupported backend %q (want %s or %s)", cfg.Backend, BackendVXLAN, BackendHostGW)
	}
	v6 = cfg.ClusterCIDR.IP.To4() == nil
	if (cfg.NodeIP.To4() == nil) != v6 {
		return false, fmt.Errorf("flannel: node IP %s and cluster CIDR %s are of different IP families", cfg.NodeIP, cfg.ClusterCIDR)
	}
	return v6, nil
}

// checkIptables fails early where flannel would only log: it runs these binaries for its rules.
func checkIptables(v6 bool) error {
	bins := []string{"iptables", "iptables-restore"}
	if v6 {
		bins = []string{"ip6tables", "ip6tables-restore"}
	}
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("flannel needs %s: %w", b, err)
		}
	}
	return nil
}

// checkChains makes sure flannel's masquerade and forward chains hold rules.
func checkChains(v6 bool) error {
	proto := iptables.ProtocolIPv4
	if v6 {
		proto = iptables.ProtocolIPv6
	}
	ipt, err := iptables.NewWithProtocol(proto)
	if err != nil {
		return fmt.Errorf("running iptables: %w", err)
	}
	for _, c := range [][2]string{{"nat", "FLANNEL-POSTRTG"}, {"filter", "FLANNEL-FWD"}} {
		rules, err := ipt.List(c[0], c[1])
		if err != nil {
			return fmt.Errorf("listing flannel's iptables chain %s/%s: %w", c[0], c[1], err)
		}
		// The first line is the chain's own -N.
		if len(rules) < 2 {
			return fmt.Errorf("flannel's iptables chain %s/%s has no rules (flannel logged why)", c[0], c[1])
		}
	}
	return nil
}

// checkListNodes fails at once where flannel's Node informer would retry for ten minutes:
// since Kubernetes 1.34 the Node authorizer lets a node read only its own Node, so listing and
// watching all of them must be granted to the node's identity separately (RBAC).
func checkListNodes(ctx context.Context, client kubernetes.Interface, nodeName string) error {
	_, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1})
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("flannel: node %s may not list Nodes; its identity needs get, list and watch on nodes: %w", nodeName, err)
	case err != nil:
		// Anything else may pass; the informer retries it.
		klog.V(2).InfoS("Listing nodes", "err", err)
	}
	return nil
}

// waitListNodes returns once the node may list Nodes, or with ctx's cause.
func waitListNodes(ctx context.Context, client kubernetes.Interface) error {
	return wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			klog.V(2).InfoS("Waiting to list Nodes", "err", err)
		}
		return err == nil, nil
	})
}

// envMu serializes the NODE_NAME dance below within the process.
var envMu sync.Mutex

// newSubnetManager starts flannel's kube subnet manager and waits for its Node informer to
// sync. The manager learns its node's name only from $NODE_NAME or from its own pod's spec (it
// was written for a DaemonSet pod), and its constructor that takes the name is unexported, so
// the variable is set for the call and restored afterwards: the one environment variable ketch
// changes at run time, because flannel cannot be told directly.
func newSubnetManager(ctx context.Context, cfg Config, confPath string) (subnet.Manager, error) {
	envMu.Lock()
	defer envMu.Unlock()
	prev, had := os.LookupEnv("NODE_NAME")
	if err := os.Setenv("NODE_NAME", cfg.NodeName); err != nil {
		return nil, fmt.Errorf("setting NODE_NAME: %w", err)
	}
	defer func() {
		if had {
			os.Setenv("NODE_NAME", prev)
		} else {
			os.Unsetenv("NODE_NAME")
		}
	}()
	sm, err := kube.NewSubnetManager(ctx, "", cfg.Kubeconfig, annotationPrefix, confPath, true)
	if err != nil {
		return nil, fmt.Errorf("flannel's kube subnet manager: %w", err)
	}
	return sm, nil
}

// registerNetwork creates the backend's device and takes the node's lease, annotating the Node.
func registerNetwork(ctx context.Context, be backend.Backend, wg *sync.WaitGroup, netCfg *subnet.Config) (backend.Network, error) {
	for attempt := 1; ; attempt++ {
		bn, err := be.RegisterNetwork(ctx, wg, netCfg)
		if err == nil {
			return bn, nil
		}
		if ctx.Err() != nil || attempt == registerAttempts {
			return nil, fmt.Errorf("flannel: registering the network: %w", err)
		}
		klog.V(2).InfoS("Retrying flannel's network registration", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("flannel: registering the network: %w", context.Cause(ctx))
		case <-time.After(registerRetryWait):
		}
	}
}

// prevLease is what a previous run wrote to the subnet file.
type prevLease struct {
	network, subnet         ip.IP4Net
	ipv6Network, ipv6Subnet ip.IP6Net
}

// readSubnetFile reads the previous run's subnet file; a missing or unreadable file yields
// zero values, which flannel takes as "no previous rules".
func readSubnetFile(path string) prevLease {
	var p prevLease
	data, err := os.ReadFile(path)
	if err != nil {
		return p
	}
	for _, line := range strings.Split(string(data), "\n") {
		key, val, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		_, n, err := net.ParseCIDR(val)
		if err != nil {
			continue
		}
		switch key {
		case "FLANNEL_NETWORK":
			p.network = ip.FromIPNet(n)
		case "FLANNEL_SUBNET":
			p.subnet = ip.FromIPNet(n)
		case "FLANNEL_IPV6_NETWORK":
			p.ipv6Network = ip.FromIP6Net(n)
		case "FLANNEL_IPV6_SUBNET":
			p.ipv6Subnet = ip.FromIP6Net(n)
		}
	}
	return p
}

// writeNetConf writes net-conf.json for the kube subnet manager, which reads it from a file.
func writeNetConf(cfg Config) (string, error) {
	data, err := netConf(cfg)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(cfg.ConfDir, 0o700); err != nil {
		return "", fmt.Errorf("flannel config dir: %w", err)
	}
	path := filepath.Join(cfg.ConfDir, NetConfFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}
