package main

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/server"
)

func serverCommand() *cli.Command {
	return &cli.Command{
		Name:  "server",
		Usage: "run a Kubernetes control plane and a node in this process",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "YAML file whose keys are these flags' long names", Value: config.DefaultConfigFile},
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Usage: "where the cluster's state lives", Value: config.DefaultDataDir},
			&cli.StringFlag{Name: "run-dir", Usage: "where sockets and other runtime state live", Value: config.DefaultRunDir, Hidden: true},
			&cli.StringFlag{Name: "node-name", Usage: "this node's name (default: the hostname)"},
			&cli.StringSliceFlag{Name: "node-ip", Usage: "this node's IP addresses (default: the address of the default route)"},
			&cli.StringFlag{Name: "bind-address", Usage: "address kube-apiserver listens on", Value: "0.0.0.0"},
			&cli.IntFlag{Name: "https-listen-port", Usage: "kube-apiserver's port", Value: config.DefaultHTTPSPort},
			&cli.StringFlag{Name: "cluster-cidr", Usage: "pod network", Value: config.DefaultClusterCIDR},
			&cli.StringFlag{Name: "service-cidr", Usage: "service network", Value: config.DefaultServiceCIDR},
			&cli.StringFlag{Name: "cluster-dns", Usage: "cluster DNS service IP", Value: config.DefaultClusterDNS},
			&cli.StringFlag{Name: "cluster-domain", Usage: "cluster DNS domain", Value: config.DefaultClusterDomain},
			&cli.StringSliceFlag{Name: "tls-san", Usage: "extra names or IPs for kube-apiserver's certificate"},
			&cli.StringFlag{Name: "write-kubeconfig", Aliases: []string{"o"}, Usage: "where to write the admin kubeconfig", Value: config.DefaultWriteKubeconfig},
			&cli.StringFlag{Name: "write-kubeconfig-mode", Usage: "file mode of the admin kubeconfig, in octal", Value: "0600"},
			&cli.StringSliceFlag{Name: "kube-apiserver-arg", Usage: "extra kube-apiserver flag, as flag=value"},
			&cli.StringSliceFlag{Name: "kube-controller-manager-arg", Usage: "extra kube-controller-manager flag, as flag=value"},
			&cli.StringSliceFlag{Name: "kube-scheduler-arg", Usage: "extra kube-scheduler flag, as flag=value"},
			&cli.StringSliceFlag{Name: "kubelet-arg", Usage: "extra kubelet flag, as flag=value"},
			&cli.StringSliceFlag{Name: "kube-proxy-arg", Usage: "extra kube-proxy flag, as flag=value"},
			debugFlag,
		},
		Action: func(c *cli.Context) error {
			if err := applyConfigFile(c, c.String("config"), c.IsSet("config")); err != nil {
				return err
			}
			cfg, err := config.Parse(config.Raw{
				DataDir: c.String("data-dir"), RunDir: c.String("run-dir"), NodeName: c.String("node-name"),
				NodeIPs: c.StringSlice("node-ip"), BindAddress: c.String("bind-address"), HTTPSPort: c.Int("https-listen-port"),
				ClusterCIDR: c.String("cluster-cidr"), ServiceCIDR: c.String("service-cidr"), ClusterDNS: c.String("cluster-dns"),
				ClusterDomain: c.String("cluster-domain"), TLSSANs: c.StringSlice("tls-san"),
				WriteKubeconfig: c.String("write-kubeconfig"), WriteKubeconfigMode: c.String("write-kubeconfig-mode"),
				APIServerArgs: c.StringSlice("kube-apiserver-arg"), ControllerManagerArgs: c.StringSlice("kube-controller-manager-arg"),
				SchedulerArgs: c.StringSlice("kube-scheduler-arg"), KubeletArgs: c.StringSlice("kubelet-arg"),
				KubeProxyArgs: c.StringSlice("kube-proxy-arg"), Debug: c.Bool("debug"),
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
