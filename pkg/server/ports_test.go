package server

import (
	"net"
	"slices"
	"testing"

	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/hostcheck"
)

func TestServerPorts(t *testing.T) {
	addrs := func(ports []hostcheck.Port) []string {
		var out []string
		for _, p := range ports {
			out = append(out, p.Addr+" "+p.Component)
		}
		return out
	}
	got := addrs(ports(&config.Server{BindAddress: net.IPv4zero, HTTPSPort: 6443}))
	want := []string{
		"0.0.0.0:6443 kube-apiserver",
		"127.0.0.1:10257 kube-controller-manager",
		"127.0.0.1:10259 kube-scheduler",
		"0.0.0.0:10250 the kubelet",
		"127.0.0.1:10248 the kubelet's health checks",
		"127.0.0.1:10249 kube-proxy's metrics",
		"127.0.0.1:10256 kube-proxy's health checks",
	}
	if !slices.Equal(got, want) {
		t.Errorf("default ports:\n got %q\nwant %q", got, want)
	}

	// The user's --*-arg values move or turn off a component's server; the last one wins.
	got = addrs(ports(&config.Server{
		BindAddress: net.ParseIP("127.0.0.1"), HTTPSPort: 7443,
		ControllerManagerArgs: []string{"secure-port=0"},
		SchedulerArgs:         []string{"bind-address=::1", "secure_port=20259"},
		Node: config.Node{
			KubeletArgs:   []string{"port=1", "port=20250", "address=127.0.0.1", "healthz-port=0", "read-only-port=10255"},
			KubeProxyArgs: []string{"metrics-bind-address=0.0.0.0:20249", "healthz-bind-address="},
		},
	}))
	want = []string{
		"127.0.0.1:7443 kube-apiserver",
		"[::1]:20259 kube-scheduler",
		"127.0.0.1:20250 the kubelet",
		"127.0.0.1:10255 the kubelet's read-only server",
		"0.0.0.0:20249 kube-proxy's metrics",
	}
	if !slices.Equal(got, want) {
		t.Errorf("overridden ports:\n got %q\nwant %q", got, want)
	}
}
