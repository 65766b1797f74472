package agent

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cliflag "k8s.io/component-base/cli/flag"
	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	proxyapp "k8s.io/kubernetes/cmd/kube-proxy/app"
	"k8s.io/utils/ptr"

	"github.com/ketch-k8s/ketch/pkg/component"
)

// startKubeProxy runs kube-proxy in iptables mode until ctx ends. Like the control plane it runs
// through the exported options rather than the cobra command, which would install a signal
// handler and apply a logging configuration of its own.
func startKubeProxy(ctx context.Context, node Node) (*component.Component, error) {
	configFile := node.Paths().KubeProxyConfigFile()
	cfg := &kubeproxyv1alpha1.KubeProxyConfiguration{
		TypeMeta:         metav1.TypeMeta{APIVersion: kubeproxyv1alpha1.SchemeGroupVersion.String(), Kind: "KubeProxyConfiguration"},
		BindAddress:      node.NodeIPs[0].String(),
		ClusterCIDR:      node.Cluster.ClusterCIDR.String(),
		HostnameOverride: node.NodeName,
		Mode:             kubeproxyv1alpha1.ProxyMode("iptables"),
		// Loopback only: several nodes may share a machine in tests, and nothing remote needs them.
		HealthzBindAddress: "127.0.0.1:10256",
		MetricsBindAddress: "127.0.0.1:10249",
		// Leave the host's conntrack table size alone: raising it needs privileges a container
		// host may not grant, and the kernel default suits small clusters.
		Conntrack: kubeproxyv1alpha1.KubeProxyConntrackConfiguration{MaxPerCore: ptr.To[int32](0)},
	}
	cfg.ClientConnection.Kubeconfig = node.Certs.KubeProxyKubeconfig
	if err := writeYAML(configFile, cfg); err != nil {
		return nil, err
	}
	opts := proxyapp.NewOptions()
	fs := pflag.NewFlagSet("kube-proxy", pflag.ContinueOnError)
	fs.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
	opts.AddFlags(fs)
	if err := fs.Parse(component.CommandLine("kube-proxy", map[string]string{"config": configFile}, node.KubeProxyArgs)); err != nil {
		return nil, fmt.Errorf("kube-proxy arguments: %w", err)
	}
	if err := opts.Complete(fs); err != nil {
		return nil, fmt.Errorf("kube-proxy options: %w", err)
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("kube-proxy options: %w", err)
	}
	return component.StartUnstoppable(ctx, "kube-proxy", func() error { return opts.Run(ctx) }), nil
}
