package server

import (
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/daemon"
)

// serverPorts lists the TCP addresses the server's components will listen on: kube-apiserver's
// (apiserver, from --bind-address and --https-listen-port) and the fixed ones of the control
// plane and the node, as the --*-arg overrides leave them. Checking them all up front turns a
// conflict into one clear error instead of a component failing minutes into the start.
func serverPorts(cfg *config.Server, apiserver string) []daemon.Port {
	ports := []daemon.Port{{Addr: apiserver, Component: "kube-apiserver", Move: "--https-listen-port or --bind-address"}}
	cm := daemon.ArgValues(cfg.ControllerManagerArgs)
	ports = daemon.AddPort(ports, "kube-controller-manager", "--kube-controller-manager-arg secure-port=PORT",
		cm.Get("bind-address", "127.0.0.1"), cm.Get("secure-port", "10257"))
	sched := daemon.ArgValues(cfg.SchedulerArgs)
	ports = daemon.AddPort(ports, "kube-scheduler", "--kube-scheduler-arg secure-port=PORT",
		sched.Get("bind-address", "127.0.0.1"), sched.Get("secure-port", "10259"))
	return append(ports, daemon.NodePorts(cfg.KubeletArgs, cfg.KubeProxyArgs)...)
}
