package main

import (
	"context"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/ketch-k8s/ketch/manifests"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/server"
)

func serverCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "bind-address", Usage: "address kube-apiserver listens on", Value: "0.0.0.0"},
		&cli.IntFlag{Name: "https-listen-port", Usage: "kube-apiserver's port", Value: config.DefaultHTTPSPort},
		&cli.StringFlag{Name: "cluster-cidr", Usage: "pod network", Value: config.DefaultClusterCIDR},
		&cli.StringFlag{Name: "service-cidr", Usage: "service network", Value: config.DefaultServiceCIDR},
		&cli.StringFlag{Name: "cluster-dns", Usage: "cluster DNS service IP", Value: config.DefaultClusterDNS},
		&cli.StringFlag{Name: "cluster-domain", Usage: "cluster DNS domain", Value: config.DefaultClusterDomain},
		&cli.StringSliceFlag{Name: "tls-san", Usage: "extra names or IPs for kube-apiserver's certificate"},
		&cli.StringFlag{Name: "write-kubeconfig", Aliases: []string{"o"}, Usage: "where to write the admin kubeconfig", Value: config.DefaultWriteKubeconfig},
		&cli.StringFlag{Name: "write-kubeconfig-mode", Usage: "file mode of the admin kubeconfig, in octal", Value: "0600"},
		&cli.StringFlag{Name: "token", Aliases: []string{"t"}, Usage: "the server token's secret (default: a random one, kept in <data-dir>/server/token)", EnvVars: []string{"KETCH_TOKEN"}},
		&cli.StringFlag{Name: "token-file", Usage: "file holding the server token's secret", EnvVars: []string{"KETCH_TOKEN_FILE"}},
		&cli.StringFlag{Name: "flannel-backend", Usage: "pod network between nodes: vxlan, host-gw, or none (bring your own CNI)", Value: config.DefaultFlannelBackend},
		&cli.StringSliceFlag{Name: "disable", Usage: "bundled addon not to deploy (and to remove if it was): " + strings.Join(manifests.Addons(), ", ")},
		&cli.StringSliceFlag{Name: "kube-apiserver-arg", Usage: "extra kube-apiserver flag, as flag=value"},
		&cli.StringSliceFlag{Name: "kube-controller-manager-arg", Usage: "extra kube-controller-manager flag, as flag=value"},
		&cli.StringSliceFlag{Name: "kube-scheduler-arg", Usage: "extra kube-scheduler flag, as flag=value"},
	}
	return &cli.Command{
		Name:  "server",
		Usage: "run a Kubernetes control plane and a node in this process",
		Flags: append(nodeFlags(), flags...),
		Action: func(c *cli.Context) error {
			if err := applyConfigFile(c, c.String("config"), c.IsSet("config")); err != nil {
				return err
			}
			cfg, err := config.Parse(config.Raw{
				NodeRaw: nodeRaw(c), BindAddress: c.String("bind-address"), HTTPSPort: c.Int("https-listen-port"),
				ClusterCIDR: c.String("cluster-cidr"), ServiceCIDR: c.String("service-cidr"), ClusterDNS: c.String("cluster-dns"),
				ClusterDomain: c.String("cluster-domain"), TLSSANs: c.StringSlice("tls-san"),
				WriteKubeconfig: c.String("write-kubeconfig"), WriteKubeconfigMode: c.String("write-kubeconfig-mode"),
				APIServerArgs: c.StringSlice("kube-apiserver-arg"), ControllerManagerArgs: c.StringSlice("kube-controller-manager-arg"),
				SchedulerArgs: c.StringSlice("kube-scheduler-arg"),
				Token:         c.String("token"), TokenFile: c.String("token-file"), FlannelBackend: c.String("flannel-backend"),
				Disable: c.StringSlice("disable"),
			})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return server.Run(ctx, cfg)
		},
	}
}

// nodeFlags are the flags of every command that runs a node (server and agent).
func nodeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "YAML file whose keys are these flags' long names", Value: config.DefaultConfigFile},
		&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Usage: "where the node's state lives", Value: config.DefaultDataDir},
		&cli.StringFlag{Name: "run-dir", Usage: "where sockets and other runtime state live", Value: config.DefaultRunDir, Hidden: true},
		&cli.StringFlag{Name: "node-name", Usage: "this node's name (default: the hostname)"},
		&cli.StringSliceFlag{Name: "node-ip", Usage: "this node's IP addresses (default: the address of the default route)"},
		&cli.StringSliceFlag{Name: "node-external-ip", Usage: "this node's external IP addresses, added to its serving certificate"},
		&cli.StringSliceFlag{Name: "node-label", Usage: "label to register the node with, as key=value"},
		&cli.StringSliceFlag{Name: "node-taint", Usage: "taint to register the node with, as key=value:Effect"},
		&cli.StringSliceFlag{Name: "kubelet-arg", Usage: "extra kubelet flag, as flag=value"},
		&cli.StringSliceFlag{Name: "kube-proxy-arg", Usage: "extra kube-proxy flag, as flag=value"},
		&cli.StringFlag{Name: "flannel-iface", Usage: "interface for pod traffic between nodes (default: the node IP's)"},
		debugFlag,
	}
}

func nodeRaw(c *cli.Context) config.NodeRaw {
	return config.NodeRaw{
		DataDir: c.String("data-dir"), RunDir: c.String("run-dir"), NodeName: c.String("node-name"),
		NodeIPs: c.StringSlice("node-ip"), NodeExternalIPs: c.StringSlice("node-external-ip"),
		Labels: c.StringSlice("node-label"), Taints: c.StringSlice("node-taint"),
		KubeletArgs: c.StringSlice("kubelet-arg"), KubeProxyArgs: c.StringSlice("kube-proxy-arg"),
		FlannelIface: c.String("flannel-iface"), Debug: c.Bool("debug"),
	}
}
