package app

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ketch-k8s/ketch/pkg/config"
)

// parse runs the command line with args and returns the config its node command got.
func parse(t *testing.T, configFile string, args ...string) (*config.Server, *config.Agent, error) {
	t.Helper()
	var server *config.Server
	var agent *config.Agent
	app := newApp(func(c *config.Server) error { server = c; return nil }, func(c *config.Agent) error { agent = c; return nil })
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(configFile), 0o600); err != nil {
		t.Fatal(err)
	}
	argv := append([]string{"ketch", args[0], "--config", path, "--node-name", "n1", "--node-ip", "192.0.2.10"}, args[1:]...)
	err := app.Run(argv)
	return server, agent, err
}

// TestFlagsBindIntoConfig: each flag lands in its config field; repeated component arguments are
// all kept, whole, commas included; list flags that take comma-separated values split them.
func TestFlagsBindIntoConfig(t *testing.T) {
	s, _, err := parse(t, "", "server",
		"--cluster-cidr", "10.50.0.0/16", "--https-listen-port", "7443", "--bind-address", "127.0.0.1",
		"--kube-apiserver-arg", "feature-gates=A=true,B=false", "--kube-apiserver-arg", "feature-gates=C=true",
		"--tls-san", "a.example,b.example", "--tls-san", "192.0.2.99", "--disable", "coredns,servicelb",
		"--node-label", "tier=edge", "--kubelet-arg", "max-pods=50", "--debug")
	if err != nil {
		t.Fatal(err)
	}
	if s.ClusterCIDR.String() != "10.50.0.0/16" || s.HTTPSPort != 7443 || s.BindAddress.String() != "127.0.0.1" || !s.Debug {
		t.Errorf("parsed %+v", s)
	}
	for _, tc := range []struct {
		name      string
		got, want []string
	}{
		{"kube-apiserver args", s.APIServerArgs, []string{"feature-gates=A=true,B=false", "feature-gates=C=true"}},
		{"TLS SANs", s.TLSSANs, []string{"a.example", "b.example", "192.0.2.99"}},
		{"disabled addons", s.Disable, []string{"coredns", "servicelb"}},
		{"labels", s.Labels, []string{"tier=edge"}},
		{"kubelet args", s.KubeletArgs, []string{"max-pods=50"}},
	} {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

// TestConfigFile: the file sets what the command line does not; the command line wins; lists
// in the file are lists.
func TestConfigFile(t *testing.T) {
	s, _, err := parse(t, "cluster-cidr: 10.60.0.0/16\nservice-cidr: 10.61.0.0/16\ncluster-dns: 10.61.0.10\nkube-proxy-arg:\n  - v=2\n  - feature-gates=X=true,Y=false\n",
		"server", "--service-cidr", "10.62.0.0/16", "--cluster-dns", "10.62.0.10")
	if err != nil {
		t.Fatal(err)
	}
	if s.ClusterCIDR.String() != "10.60.0.0/16" || s.ServiceCIDR.String() != "10.62.0.0/16" {
		t.Errorf("cluster %s service %s", s.ClusterCIDR, s.ServiceCIDR)
	}
	if want := []string{"v=2", "feature-gates=X=true,Y=false"}; !slices.Equal(s.KubeProxyArgs, want) {
		t.Errorf("kube-proxy args %q, want %q", s.KubeProxyArgs, want)
	}

	_, a, err := parse(t, "server: https://192.0.2.1:6443\nnode-label: [a=b, c=d]\n", "agent", "--token", "K10"+strings.Repeat("ab", 32)+"::server:secret-123")
	if err != nil {
		t.Fatal(err)
	}
	if a.ServerURL != "https://192.0.2.1:6443" || !slices.Equal(a.Labels, []string{"a=b", "c=d"}) {
		t.Errorf("agent %+v", a)
	}

	if _, _, err := parse(t, "tls-sans: x\n", "server"); err == nil || !strings.Contains(err.Error(), `unknown key "tls-sans"`) {
		t.Errorf("a misspelt key: %v", err)
	}
}
