package config

import (
	"strings"
	"testing"
)

// TestPaths pins the on-disk layout: users, the killall script and the installer rely on it,
// and a node started by a newer ketch must find the state an older one left.
func TestPaths(t *testing.T) {
	p := Paths{DataDir: "/var/lib/ketch", RunDir: "/run/ketch"}
	for got, want := range map[string]string{
		p.DataDirLock():          "/var/lib/ketch/ketch.pid",
		p.RunDirLock():           "/run/ketch/ketch.pid",
		p.LogFile():              "/var/lib/ketch/logs/ketch.log",
		p.BundleDir():            "/var/lib/ketch/data",
		p.StorageDir():           "/var/lib/ketch/storage",
		p.DatastoreDir():         "/var/lib/ketch/server/db",
		p.ServerTLSDir():         "/var/lib/ketch/server/tls",
		p.ServerCredDir():        "/var/lib/ketch/server/cred",
		p.ManifestsDir():         "/var/lib/ketch/server/manifests",
		p.TokenFile():            "/var/lib/ketch/server/token",
		p.ServerCAFile():         "/var/lib/ketch/server/tls/server-ca.crt",
		p.AdminKubeconfig():      "/var/lib/ketch/server/cred/admin.kubeconfig",
		p.DatastoreSocket():      "/run/ketch/datastore.sock",
		p.AgentTLSDir():          "/var/lib/ketch/agent/tls",
		p.NodePasswordFile():     "/var/lib/ketch/agent/node-password",
		p.ImagesDir():            "/var/lib/ketch/agent/images",
		p.KubeletDir():           "/var/lib/ketch/agent/kubelet",
		p.PodLogsDir():           "/var/lib/ketch/agent/pod-logs",
		p.VolumePluginDir():      "/var/lib/ketch/agent/kubelet-plugins/volume/exec",
		p.CNINetworksDir():       "/var/lib/ketch/agent/cni/networks",
		p.KubeletConfigFile():    "/var/lib/ketch/agent/etc/kubelet/config.yaml",
		p.StaticPodDir():         "/var/lib/ketch/agent/etc/kubelet/manifests",
		p.KubeProxyConfigFile():  "/var/lib/ketch/agent/etc/kube-proxy/config.yaml",
		p.FlannelConfDir():       "/var/lib/ketch/agent/etc/flannel",
		p.FlannelSubnetFile():    "/run/ketch/flannel/subnet.env",
		p.ContainerdRoot():       "/var/lib/ketch/agent/containerd",
		p.ContainerdConfigFile(): "/var/lib/ketch/agent/etc/containerd/config.toml",
		p.ContainerdCertsDir():   "/var/lib/ketch/agent/etc/containerd/certs.d",
		p.CNIConfDir():           "/var/lib/ketch/agent/etc/cni/net.d",
		p.ContainerdState():      "/run/ketch/containerd",
		p.ContainerdSocket():     "/run/ketch/containerd/containerd.sock",
	} {
		if got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
}

// TestNodePaths: a node's paths follow its (absolute) dirs, and --debug means one verbosity.
func TestNodePaths(t *testing.T) {
	s, err := ParseServer(func() ServerRaw { r := valid(); r.DataDir, r.RunDir, r.Debug = "/srv/k", "/run/k2", true; return r }())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Paths().ContainerdSocket(); got != "/run/k2/containerd/containerd.sock" {
		t.Errorf("containerd socket %s", got)
	}
	if got := s.Paths().TokenFile(); got != "/srv/k/server/token" {
		t.Errorf("token file %s", got)
	}
	if s.Verbosity() != DebugVerbosity {
		t.Errorf("verbosity %d with --debug", s.Verbosity())
	}
	s.Debug = false
	if s.Verbosity() != 0 {
		t.Errorf("verbosity %d without --debug", s.Verbosity())
	}
}

func TestParseAgent(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	node := NodeRaw{DataDir: "/var/lib/ketch", RunDir: "/run/ketch", NodeName: "agent-1", NodeIPs: []string{"192.0.2.20"}}
	a, err := ParseAgent(AgentRaw{NodeRaw: node, ServerURL: "https://192.0.2.10:6443", Token: "K10" + hash + "::server:secret-123"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Token.CAHash != hash || a.Token.Username != "server" || a.Token.Password != "secret-123" || a.NodeName != "agent-1" {
		t.Errorf("parsed %+v", a)
	}
	for _, tc := range []struct {
		raw  AgentRaw
		want []string
	}{
		{AgentRaw{NodeRaw: node, ServerURL: "http://192.0.2.10:6443", Token: "K10" + hash + "::server:secret-123"},
			[]string{`--server "http://192.0.2.10:6443" must be the server's https URL`}},
		{AgentRaw{NodeRaw: node, ServerURL: "https://192.0.2.10:6443"},
			[]string{"ketch agent needs a join token"}},
		// Every problem at once.
		{AgentRaw{NodeRaw: NodeRaw{DataDir: "/d", RunDir: "/r", NodeName: "Bad_Name", NodeIPs: []string{"x"}}, Token: "nope"},
			[]string{`--server "" must be`, "the join token: a join token starts with K10", `--node-name "bad_name"`, `--node-ip "x"`}},
	} {
		_, err := ParseAgent(tc.raw)
		for _, want := range tc.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("ParseAgent(%+v): %v, want it to say %q", tc.raw, err, want)
			}
		}
	}
}
