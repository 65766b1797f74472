// Package agent is a ketch node: the runtime bundle, containerd, the node's images, the kubelet,
// kube-proxy and the pod network, run in this process (Start, which `ketch server` uses for its
// own node too), and `ketch agent`, which joins a node to a cluster through its server (Role).
package agent

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"

	containerdclient "github.com/containerd/containerd/v2/client"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/agent/cni"
	"github.com/ketch-k8s/ketch/pkg/agent/containerd"
	"github.com/ketch-k8s/ketch/pkg/agent/flannel"
	"github.com/ketch-k8s/ketch/pkg/bundle"
	"github.com/ketch-k8s/ketch/pkg/component"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/hostcheck"
	"github.com/ketch-k8s/ketch/pkg/images"
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

// Start starts the node's components on n's stages (containerd, then the kubelet, kube-proxy and
// flannel) and returns once they run; the frame then waits for the node to register and turn
// Ready.
func Start(ctx context.Context, n *lifecycle.Node, node Node) error {
	paths := node.Paths()
	host := n.Host()
	n.Waiting("the runtime bundle to unpack")
	binDir, err := bundle.Unpack(paths.BundleDir())
	if err != nil {
		return fmt.Errorf("unpacking the runtime bundle: %w", err)
	}
	pauseName, pauseTar, err := images.PauseImage()
	if err != nil {
		return err
	}

	n.Waiting("containerd")
	client, err := startContainerd(ctx, n, containerd.Config{
		Paths: paths, BinDir: binDir, SandboxImage: pauseName,
		SystemdCgroup:       host.CgroupDriver == hostcheck.CgroupDriverSystemd,
		RestrictOOMScoreAdj: host.RestrictOOMScoreAdj,
		// stderr is the log file unless --debug (the frame's console decides).
		Log: os.Stderr,
	})
	if err != nil {
		return err
	}
	n.Waiting("the pause image to import")
	if _, err := images.Ensure(ctx, client, pauseName, bytes.NewReader(pauseTar), images.WithPinned()); err != nil {
		return fmt.Errorf("importing the pause image: %w", err)
	}
	// The addon image (an 80 MB program to unpack, compress and import on a first start) is made
	// while the kubelet and flannel start; the node turns Ready only once it is there, so no
	// addon pod ever finds it missing.
	addonImage := make(chan error, 1)
	go func() {
		_, err := images.EnsureAddonsImage(ctx, client, paths.BundleDir())
		addonImage <- err
	}()
	n.Waiting("the image tarballs in " + paths.ImagesDir() + " to import")
	// A bad tarball is reported, not fatal: the node is useful without the user's images.
	if results, err := images.ImportDir(ctx, client, paths.ImagesDir()); err != nil {
		klog.ErrorS(err, "Importing images", "dir", paths.ImagesDir())
	} else {
		for _, r := range results {
			klog.V(2).InfoS("Image tarball", "result", r)
		}
	}

	systemd := host.CgroupDriver == hostcheck.CgroupDriverSystemd
	cgroupRoot := nodeCgroupRoot(node.NodeName, systemd)
	if err := ensureCgroupRoot(cgroupRoot, host.CgroupVersion == 2); err != nil {
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
		case err := <-addonImage:
			return err
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	n.Go(stage, "flannel", func(ctx context.Context) error { return runNetwork(ctx, node, addonImage) })
	return nil
}

// startContainerd starts containerd on a stage of its own, which stops after the node's
// components, and returns a client of it that the stage closes.
func startContainerd(ctx context.Context, n *lifecycle.Node, cfg containerd.Config) (*containerdclient.Client, error) {
	stage := n.Stage("containerd")
	// containerd runs for the stage's lifetime, but a stop while it is still starting must abort
	// the start.
	startCtx, cancel := context.WithCancel(stage.Context())
	abort := context.AfterFunc(ctx, cancel)
	ctrd, err := containerd.Start(startCtx, cfg)
	if !abort() && err == nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	n.Go(stage, "containerd", func(ctx context.Context) error {
		<-ctx.Done()
		ctrd.Stop()
		return nil
	})
	client, err := containerdclient.New(ctrd.Address())
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd: %w", err)
	}
	stage.OnStop(func() { client.Close() })
	return client, nil
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
