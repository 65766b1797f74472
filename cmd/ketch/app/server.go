package app

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ketch-k8s/ketch/manifests"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/server"
)

func runServer(cfg *config.Server) error { return runNode(&cfg.Node, server.Role(cfg)) }

func serverCommand(run func(*config.Server) error) *cli.Command {
	var raw config.ServerRaw
	var configPath string
	flags := append(nodeFlags(&raw.NodeRaw, &configPath),
		&cli.StringFlag{Name: "bind-address", Usage: "address kube-apiserver listens on", Value: "0.0.0.0", Destination: &raw.BindAddress},
		&cli.IntFlag{Name: "https-listen-port", Usage: "kube-apiserver's port", Value: config.DefaultHTTPSPort, Destination: &raw.HTTPSPort},
		&cli.StringFlag{Name: "cluster-cidr", Usage: "pod network; each node gets a /24 of it", Value: config.DefaultClusterCIDR, Destination: &raw.ClusterCIDR},
		&cli.StringFlag{Name: "service-cidr", Usage: "service network", Value: config.DefaultServiceCIDR, Destination: &raw.ServiceCIDR},
		&cli.StringFlag{Name: "cluster-dns", Usage: "cluster DNS service IP", Value: config.DefaultClusterDNS, Destination: &raw.ClusterDNS},
		&cli.StringFlag{Name: "cluster-domain", Usage: "cluster DNS domain", Value: config.DefaultClusterDomain, Destination: &raw.ClusterDomain},
		commaListFlag("tls-san", "extra name or IP for kube-apiserver's certificate", &raw.TLSSANs),
		&cli.StringFlag{Name: "write-kubeconfig", Aliases: []string{"o"}, Usage: "where to write the admin kubeconfig", Value: config.DefaultWriteKubeconfig, Destination: &raw.WriteKubeconfig},
		&cli.StringFlag{Name: "write-kubeconfig-mode", Usage: "file mode of the admin kubeconfig, in octal", Value: "0600", Destination: &raw.WriteKubeconfigMode},
		&cli.StringFlag{Name: "token", Aliases: []string{"t"}, Usage: "the server token's secret (default: a random one, kept in <data-dir>/server/token)", EnvVars: []string{"KETCH_TOKEN"}, Destination: &raw.Token},
		&cli.StringFlag{Name: "token-file", Usage: "file holding the server token's secret", EnvVars: []string{"KETCH_TOKEN_FILE"}, Destination: &raw.TokenFile},
		&cli.StringFlag{Name: "flannel-backend", Usage: "pod network between nodes: " + strings.Join(config.FlannelBackends, ", ") + " (none: bring your own CNI)", Value: config.DefaultFlannelBackend, Destination: &raw.FlannelBackend},
		commaListFlag("disable", "bundled addon not to deploy (and to remove if it was): "+strings.Join(manifests.Addons(), ", "), &raw.Disable),
		&cli.BoolFlag{Name: "cluster-init", Usage: "run an embedded etcd member instead of the bbolt datastore, so that more servers can join (moves an existing bbolt datastore into it)", Destination: &raw.ClusterInit},
		&cli.StringFlag{Name: "server", Aliases: []string{"s"}, Usage: "join the embedded etcd cluster of the server at this https URL as another server (needs --token)", Destination: &raw.JoinURL},
		&cli.BoolFlag{Name: "cluster-reset", Usage: "make this server's embedded etcd member the only member, keeping its data, when the cluster has lost quorum", Destination: &raw.ClusterReset},
		commaListFlag("datastore-endpoint", "external etcd client URLs, such as https://10.0.0.5:2379 (comma-separated): no datastore in ketch", &raw.DatastoreEndpoint),
		&cli.StringFlag{Name: "datastore-cafile", Usage: "CA that signs the external etcd's serving certificates", Destination: &raw.DatastoreCAFile},
		&cli.StringFlag{Name: "datastore-certfile", Usage: "client certificate for the external etcd", Destination: &raw.DatastoreCertFile},
		&cli.StringFlag{Name: "datastore-keyfile", Usage: "client key for the external etcd", Destination: &raw.DatastoreKeyFile},
		listFlag("kube-apiserver-arg", "extra kube-apiserver flag, as flag=value; wins over ketch's own", &raw.APIServerArgs),
		listFlag("kube-controller-manager-arg", "extra kube-controller-manager flag, as flag=value; wins over ketch's own", &raw.ControllerManagerArgs),
		listFlag("kube-scheduler-arg", "extra kube-scheduler flag, as flag=value; wins over ketch's own", &raw.SchedulerArgs),
	)
	return &cli.Command{
		Name:  "server",
		Usage: "run a Kubernetes control plane and a node in this process",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := applyConfigFile(c, configPath, true); err != nil {
				return err
			}
			cfg, err := config.ParseServer(raw)
			if err != nil {
				return err
			}
			return run(cfg)
		},
	}
}
