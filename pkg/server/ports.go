package server

import (
	"net"
	"strconv"

	"github.com/ketch-k8s/ketch/pkg/agent"
	"github.com/ketch-k8s/ketch/pkg/component"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/etcd"
	"github.com/ketch-k8s/ketch/pkg/hostcheck"
)

// ports lists the TCP addresses the server's components will listen on: kube-apiserver's (from
// --bind-address and --https-listen-port) and the fixed ones of the control plane and the node,
// as the --*-arg overrides leave them. Checking them all up front turns a conflict into one clear
// error instead of a component failing minutes into the start.
func ports(cfg *config.Server) []hostcheck.Port {
	apiserver := net.JoinHostPort(cfg.BindAddress.String(), strconv.Itoa(cfg.HTTPSPort))
	ports := []hostcheck.Port{{Addr: apiserver, Component: "kube-apiserver", Move: "--https-listen-port or --bind-address"}}
	cm := func(flag, def string) string { return component.Lookup(cfg.ControllerManagerArgs, flag, def) }
	ports = hostcheck.AddPort(ports, "kube-controller-manager", "--kube-controller-manager-arg secure-port=PORT",
		cm("bind-address", "127.0.0.1"), cm("secure-port", "10257"))
	sched := func(flag, def string) string { return component.Lookup(cfg.SchedulerArgs, flag, def) }
	ports = hostcheck.AddPort(ports, "kube-scheduler", "--kube-scheduler-arg secure-port=PORT",
		sched("bind-address", "127.0.0.1"), sched("secure-port", "10259"))
	if cfg.DatastoreKind() == config.Embedded {
		ports = append(ports,
			hostcheck.Port{Addr: net.JoinHostPort(cfg.NodeIPs[0].String(), strconv.Itoa(etcd.ClientPort)), Component: "embedded etcd (clients)", Move: "none, etcd's ports are fixed; stop what holds it"},
			hostcheck.Port{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(etcd.ClientPort)), Component: "embedded etcd (clients)", Move: "none, etcd's ports are fixed; stop what holds it"},
			hostcheck.Port{Addr: net.JoinHostPort(cfg.NodeIPs[0].String(), strconv.Itoa(etcd.PeerPort)), Component: "embedded etcd (peers)", Move: "none, etcd's ports are fixed; stop what holds it"})
	}
	return append(ports, agent.Ports(&cfg.Node)...)
}
