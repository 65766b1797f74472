package app

import (
	"github.com/urfave/cli/v2"

	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/console"
	"github.com/ketch-k8s/ketch/pkg/lifecycle"
)

// nodeFlags are the flags of every command that runs a node (server and agent), bound to raw.
func nodeFlags(raw *config.NodeRaw, configPath *string) []cli.Flag {
	return []cli.Flag{
		configFlag(configPath),
		&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Usage: "where the node's state lives", Value: config.DefaultDataDir, Destination: &raw.DataDir},
		&cli.StringFlag{Name: "run-dir", Usage: "where sockets and other runtime state live; one node per run dir", Value: config.DefaultRunDir, Destination: &raw.RunDir},
		&cli.StringFlag{Name: "node-name", Usage: "this node's name (default: the hostname)", Destination: &raw.NodeName},
		commaListFlag("node-ip", "this node's IP addresses (default: the address of the default route)", &raw.NodeIPs),
		commaListFlag("node-external-ip", "this node's external IP addresses, added to its serving certificate", &raw.NodeExternalIPs),
		listFlag("node-label", "label to register the node with, as key=value", &raw.Labels),
		listFlag("node-taint", "taint to register the node with, as key=value:Effect", &raw.Taints),
		listFlag("kubelet-arg", "extra kubelet flag, as flag=value; wins over ketch's own", &raw.KubeletArgs),
		listFlag("kube-proxy-arg", "extra kube-proxy flag, as flag=value; wins over ketch's own", &raw.KubeProxyArgs),
		&cli.StringFlag{Name: "flannel-iface", Usage: "interface for pod traffic between nodes (default: the node IP's)", Destination: &raw.FlannelIface},
		&cli.StringFlag{Name: "resolv-conf", Usage: "resolv.conf for pods with the Default DNS policy, CoreDNS among them (default: /etc/resolv.conf, or an upstream one where it names only a local resolver)", EnvVars: []string{"KETCH_RESOLV_CONF"}, Destination: &raw.ResolvConf},
		debugFlag(&raw.Debug),
		&cli.BoolFlag{Name: "enable-pprof", Usage: "serve Go profiles at /debug/pprof/: the API's (the server process, for cluster admins) and the kubelet's (this node's process, through the API's node proxy)", Destination: &raw.EnablePprof},
	}
}

// debugFlag is --debug, with one meaning for every command: logs on the terminal (not the log
// file) at verbosity 2, for ketch and every component.
func debugFlag(dest *bool) *cli.BoolFlag {
	return &cli.BoolFlag{Name: "debug", Usage: "logs on the terminal instead of the log file, more verbose", Destination: dest}
}

// runNode runs a node with the frame until SIGTERM or SIGINT.
func runNode(node *config.Node, role lifecycle.Role) error {
	console.SetupLogging(node.Verbosity())
	ctx, stop := lifecycle.SignalContext()
	defer stop()
	return lifecycle.Run(ctx, node, role)
}
