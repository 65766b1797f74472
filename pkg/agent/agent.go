// Package agent brings up a node in this process: the runtime bundle, containerd, the local
// images, the kubelet, kube-proxy and the pod network configuration.
package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"

	containerdclient "github.com/containerd/containerd/v2/client"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/agent/cni"
	"github.com/ketch-k8s/ketch/pkg/agent/containerd"
	"github.com/ketch-k8s/ketch/pkg/agent/flannel"
	"github.com/ketch-k8s/ketch/pkg/bundle"
	"github.com/ketch-k8s/ketch/pkg/component"
	"github.com/ketch-k8s/ketch/pkg/hostcheck"
	"github.com/ketch-k8s/ketch/pkg/images"
	"github.com/ketch-k8s/ketch/pkg/pki"
)

// Config is what a node is brought up with.
type Config struct {
	NodeName      string
	NodeIPs       []net.IP
	DataDir       string // ketch's data dir; the node's state is under <DataDir>/agent
	RunDir        string
	ClusterCIDR   *net.IPNet
	ClusterDNS    net.IP
	ClusterDomain string
	Certs         *pki.Node
	Host          *hostcheck.Host
	Labels        []string
	Taints        []string
	KubeletArgs   []string
	KubeProxyArgs []string
	// FlannelBackend is vxlan, host-gw, or none (the user brings a CNI).
	FlannelBackend string
	FlannelIface   string
	// Log receives containerd's log.
	Log io.Writer
}

// Agent is a running node.
type Agent struct {
	Components []*component.Component
	containerd *containerd.Containerd
	client     *containerdclient.Client
}

// Start brings the node up and returns once its components run; the node registers and turns
// Ready on its own afterwards.
func Start(ctx context.Context, cfg Config) (_ *Agent, err error) {
	agentDir := filepath.Join(cfg.DataDir, "agent")
	binDir, err := bundle.Unpack(filepath.Join(cfg.DataDir, "data"))
	if err != nil {
		return nil, fmt.Errorf("unpacking the runtime bundle: %w", err)
	}
	pauseName, pauseTar, err := images.PauseImage()
	if err != nil {
		return nil, err
	}
	ctrd, err := containerd.Start(ctx, containerd.Config{
		DataDir: cfg.DataDir, RunDir: cfg.RunDir, BinDir: binDir, SandboxImage: pauseName,
		SystemdCgroup:       cfg.Host.CgroupDriver == hostcheck.CgroupDriverSystemd,
		RestrictOOMScoreAdj: cfg.Host.RestrictOOMScoreAdj, Log: cfg.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	a := &Agent{containerd: ctrd}
	defer func() {
		if err != nil {
			a.Stop()
		}
	}()
	a.client, err = containerdclient.New(ctrd.Address())
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd: %w", err)
	}
	if _, err := images.Ensure(ctx, a.client, pauseName, bytes.NewReader(pauseTar), images.WithPinned()); err != nil {
		return nil, fmt.Errorf("importing the pause image: %w", err)
	}
	// The addon image (an 80 MB program to unpack, compress and import on a first start) is made
	// while the kubelet and flannel start; the node turns Ready only once it is there, so no
	// addon pod ever finds it missing.
	addonImage := make(chan error, 1)
	go func() {
		_, err := images.EnsureAddonsImage(ctx, a.client, cfg.DataDir)
		addonImage <- err
	}()
	// A bad tarball is reported, not fatal: the node is useful without the user's images.
	if results, err := images.ImportDir(ctx, a.client, filepath.Join(agentDir, "images")); err != nil {
		klog.ErrorS(err, "Importing images", "dir", filepath.Join(agentDir, "images"))
	} else {
		for _, r := range results {
			klog.V(2).InfoS("Image tarball", "result", r)
		}
	}

	etc := filepath.Join(agentDir, "etc")
	systemd := cfg.Host.CgroupDriver == hostcheck.CgroupDriverSystemd
	cgroupRoot := nodeCgroupRoot(cfg.NodeName, systemd)
	if err := ensureCgroupRoot(cgroupRoot, cfg.Host.CgroupVersion == 2); err != nil {
		return nil, err
	}
	kubelet, err := StartKubelet(ctx, Kubelet{
		NodeName: cfg.NodeName, NodeIPs: cfg.NodeIPs, RootDir: filepath.Join(agentDir, "kubelet"),
		ConfigFile: filepath.Join(etc, "kubelet", "config.yaml"), Kubeconfig: cfg.Certs.KubeletKubeconfig,
		ClientCA: cfg.Certs.ClientCA, ServingCert: cfg.Certs.KubeletServingCert, ServingKey: cfg.Certs.KubeletServingKey,
		RuntimeEndpoint: "unix://" + ctrd.Address(), ClusterDNS: cfg.ClusterDNS, ClusterDomain: cfg.ClusterDomain,
		CgroupDriver: cfg.Host.CgroupDriver, CgroupV1: cfg.Host.CgroupVersion == 1, CgroupRoot: cgroupRoot,
		PodLogsDir: filepath.Join(agentDir, "pod-logs"),
		Labels:     cfg.Labels, Taints: cfg.Taints, ExtraArgs: cfg.KubeletArgs,
	})
	if err != nil {
		return nil, err
	}
	a.Components = append(a.Components, kubelet)
	go annotateNode(ctx, cfg.Certs.KubeletKubeconfig, cfg.NodeName, map[string]string{
		StorageDirAnnotation: filepath.Join(cfg.DataDir, "storage"),
	})
	proxy, err := StartKubeProxy(ctx, KubeProxy{
		NodeName: cfg.NodeName, NodeIP: cfg.NodeIPs[0], ConfigFile: filepath.Join(etc, "kube-proxy", "config.yaml"),
		Kubeconfig: cfg.Certs.KubeProxyKubeconfig, ClusterCIDR: cfg.ClusterCIDR, ExtraArgs: cfg.KubeProxyArgs,
	})
	if err != nil {
		return nil, err
	}
	a.Components = append(a.Components, proxy)

	if cfg.FlannelBackend == "none" {
		// The user's CNI decides when the node is Ready: the image must be there before Start returns.
		if err := <-addonImage; err != nil {
			return nil, err
		}
		return a, nil
	}
	a.Components = append(a.Components, startNetwork(ctx, cfg, ctrd.Paths().CNIConfDir, addonImage))
	return a, nil
}

// startNetwork runs flannel and, once it holds the node's lease and the addon image is imported
// (addonImage reports that), writes the CNI configuration for the node's subnet; the kubelet
// reports the node Ready from then on.
func startNetwork(ctx context.Context, cfg Config, cniConfDir string, addonImage <-chan error) *component.Component {
	agentDir := filepath.Join(cfg.DataDir, "agent")
	return component.Start("flannel", func() error {
		network, err := flannel.Start(ctx, flannel.Config{
			NodeName: cfg.NodeName, Kubeconfig: cfg.Certs.KubeletKubeconfig, ClusterCIDR: cfg.ClusterCIDR,
			Backend: cfg.FlannelBackend, Iface: cfg.FlannelIface, NodeIP: cfg.NodeIPs[0],
			ConfDir: filepath.Join(agentDir, "etc", "flannel"), SubnetFile: filepath.Join(cfg.RunDir, "flannel", "subnet.env"),
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
			ConfDir: cniConfDir, IPAMDir: filepath.Join(agentDir, "cni", "networks"),
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
	})
}

// Stop stops containerd; the containers and their shims keep running until the next start.
func (a *Agent) Stop() {
	if a.client != nil {
		a.client.Close()
	}
	a.containerd.Stop()
}
