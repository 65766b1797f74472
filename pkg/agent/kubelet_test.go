package agent

import (
	"net"
	"testing"

	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/pki"
)

// TestKubeletVerbosity: the kubelet applies its logging configuration to the whole process, so it
// must carry the verbosity --debug gave ketch, or the kubelet's start would reset it.
func TestKubeletVerbosity(t *testing.T) {
	for _, debug := range []bool{false, true} {
		k := kubeletConfig{Node: Node{
			Node:    &config.Node{DataDir: "/var/lib/ketch", RunDir: "/run/ketch", NodeName: "n1", Debug: debug},
			Cluster: config.Cluster{ClusterDNS: net.ParseIP("10.43.0.10"), ClusterDomain: "cluster.local"},
			Certs:   &pki.Node{},
		}}
		c := kubeletConfiguration(k)
		if got, want := int(c.Logging.Verbosity), config.Verbosity(debug); got != want {
			t.Errorf("debug %v: kubelet verbosity %d, want %d", debug, got, want)
		}
		if c.EnableProfilingHandler == nil || *c.EnableProfilingHandler {
			t.Errorf("the kubelet serves profiles without --enable-pprof")
		}
		if c.StaticPodPath != "/var/lib/ketch/agent/etc/kubelet/manifests" || c.PodLogsDir != "/var/lib/ketch/agent/pod-logs" {
			t.Errorf("paths not from config.Paths: static pods %s, pod logs %s", c.StaticPodPath, c.PodLogsDir)
		}
	}
}
