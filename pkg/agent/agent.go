// Package agent is a ketch node: the runtime bundle, containerd, the node's images, the kubelet,
// kube-proxy and the pod network, run in this process (Start, which `ketch server` uses for its
// own node too), and `ketch agent`, which joins a node to a cluster through its server (Role).
package agent

import (
	"context"
	"fmt"
	"net"

	"github.com/ketch-k8s/ketch/pkg/agent/cni"
	"github.com/ketch-k8s/ketch/pkg/agent/flannel"
	"github.com/ketch-k8s/ketch/pkg/component"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/hostcheck"
	"github.com/ketch-k8s/ketch/pkg/kubeclient"
	"github.com/ketch-k8s/ketch/pkg/lifecycle"
	"github.com/ketch-k8s/ketch/pkg/pki"
)

// Node is what a node is started with: its own settings, the cluster's, and its certificates.
type Node struct {
	*config.Node
	Cluster config.Cluster
	Certs   *pki.Node
}

// Ports lists the node's fixed listeners (the kubelet's and kube-proxy's) as the user's
// --kubelet-arg and --kube-proxy-arg leave them.
func Ports(cfg *config.Node) []hostcheck.Port {
	var ports []hostcheck.Port
	kubelet := func(flag, def string) string { return component.Lookup(cfg.KubeletArgs, flag, def) }
	ports = hostcheck.AddPort(ports, "the kubelet", "--kubelet-arg port=PORT", kubelet("address", "0.0.0.0"), kubelet("port", "10250"))
	ports = hostcheck.AddPort(ports, "the kubelet's read-only server", "--kubelet-arg read-only-port=PORT",
		kubelet("address", "0.0.0.0"), kubelet("read-only-port", "0"))
	ports = hostcheck.AddPort(ports, "the kubelet's health checks", "--kubelet-arg healthz-port=PORT",
		kubelet("healthz-bind-address", "127.0.0.1"), kubelet("healthz-port", "10248"))
	for _, a := range []struct{ flag, def, what string }{
		{"metrics-bind-address", "127.0.0.1:10249", "kube-proxy's metrics"},
		{"healthz-bind-address", "127.0.0.1:10256", "kube-proxy's health checks"},
	} {
		// A value that is not host:port is kube-proxy's to reject.
		if host, port, err := net.SplitHostPort(component.Lookup(cfg.KubeProxyArgs, a.flag, a.def)); err == nil {
			ports = hostcheck.AddPort(ports, a.what, "--kube-proxy-arg "+a.flag+"=ADDRESS:PORT", host, port)
		}
	}
	return ports
}

// Start starts the node's components on n's stages (the kubelet, kube-proxy and flannel, on the
// runtime rs starts) and returns once they run; the frame then waits for the node to register
// and turn Ready. A caller whose start fails, here or before, ends rs's start-up (rs.Abort).
func Start(ctx context.Context, n *lifecycle.Node, node Node, rs *RuntimeStart) error {
	paths := node.Paths()
	host := n.Host()
	n.Waiting("containerd and the images in " + paths.ImagesDir())
	rt, err := rs.wait(ctx)
	if err != nil {
		return err
	}

	nodeClient, err := kubeclient.New(node.Certs.KubeletKubeconfig)
	if err != nil {
		return err
	}
	n.WatchNode(ctx, nodeClient, node.NodeName)
	n.OnRegistered(func(ctx context.Context) error {
		return annotateNode(ctx, nodeClient, node.NodeName, map[string]string{StorageDirAnnotation: paths.StorageDir()})
	})

	resolvConf, msg, err := podResolvConf(node)
	if err != nil {
		return err
	}
	if msg != "" {
		n.Printf("%s", msg)
	}

	stage := n.Stage("node")
	if node.Cluster.FlannelBackend != "none" {
		// First: flannel waits for the node to register and get its pod CIDR, and meanwhile
		// readies what does not need them.
		n.Go(stage, "flannel", func(ctx context.Context) error { return runNetwork(ctx, node, rt.addonImage) })
	}
	// Right before the kubelet, which writes it into its config: ketch-killall.sh finds the
	// node's cgroups there.
	cgroupRoot := nodeCgroupRoot(node.NodeName, host.CgroupDriver == hostcheck.CgroupDriverSystemd)
	if err := ensureCgroupRoot(cgroupRoot, host.CgroupVersion == 2); err != nil {
		return err
	}
	n.Waiting("the kubelet to start")
	kubelet, err := startKubelet(stage.Context(), kubeletConfig{
		Node: node, RuntimeEndpoint: "unix://" + paths.ContainerdSocket(),
		CgroupDriver: host.CgroupDriver, CgroupV1: host.CgroupVersion == 1, CgroupRoot: cgroupRoot,
		ResolvConf: resolvConf,
	})
	if err != nil {
		return err
	}
	n.Watch(stage, kubelet)
	n.Waiting("kube-proxy to start")
	proxy, err := startKubeProxy(stage.Context(), node)
	if err != nil {
		return err
	}
	n.Watch(stage, proxy)

	if node.Cluster.FlannelBackend == "none" {
		// The user's CNI decides when the node is Ready: the image must be there before Start returns.
		n.Waiting("the addon image to import")
		select {
		case err := <-rt.addonImage:
			return err
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

// runNetwork runs flannel and, once it holds the node's lease and the addon image is imported
// (addonImage reports that), writes the CNI configuration for the node's subnet; the kubelet
// reports the node Ready from then on. It returns when ctx ends or flannel fails.
func runNetwork(ctx context.Context, node Node, addonImage <-chan error) error {
	paths := node.Paths()
	network, err := flannel.Start(ctx, flannel.Config{
		NodeName: node.NodeName, Kubeconfig: node.Certs.KubeletKubeconfig, ClusterCIDR: node.Cluster.ClusterCIDR,
		Backend: node.Cluster.FlannelBackend, Iface: node.FlannelIface, NodeIP: node.NodeIPs[0],
		ConfDir: paths.FlannelConfDir(), SubnetFile: paths.FlannelSubnetFile(),
	})
	if err != nil {
		return err
	}
	select {
	case err := <-addonImage:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return nil
	}
	err = cni.Bridge{
		ConfDir: paths.CNIConfDir(), IPAMDir: paths.CNINetworksDir(),
		Bridge: "cni0", PodCIDRs: []string{network.Subnet.String()}, MTU: network.MTU, NoMasquerade: true,
	}.Write()
	if err != nil {
		return fmt.Errorf("writing the CNI configuration: %w", err)
	}
	<-network.Done()
	if ctx.Err() != nil {
		return nil
	}
	return network.Err()
}
