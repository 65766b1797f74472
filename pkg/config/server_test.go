package config

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// valid is the settings `ketch server` gets with its defaults, plus a node name and IP so that
// the result does not depend on this host's name and routes.
func valid() ServerRaw {
	return ServerRaw{
		NodeRaw:        NodeRaw{DataDir: DefaultDataDir, RunDir: DefaultRunDir, NodeName: "node-1", NodeIPs: []string{"192.0.2.10"}},
		FlannelBackend: DefaultFlannelBackend, BindAddress: "0.0.0.0", HTTPSPort: DefaultHTTPSPort,
		ClusterCIDR: DefaultClusterCIDR, ServiceCIDR: DefaultServiceCIDR, ClusterDNS: DefaultClusterDNS,
		ClusterDomain: DefaultClusterDomain, WriteKubeconfig: DefaultWriteKubeconfig, WriteKubeconfigMode: "0600",
	}
}

func TestParseDefaults(t *testing.T) {
	s, err := ParseServer(valid())
	if err != nil {
		t.Fatal(err)
	}
	if s.ClusterCIDR.String() != DefaultClusterCIDR || s.ServiceCIDR.String() != DefaultServiceCIDR ||
		!s.ClusterDNS.Equal(net.ParseIP(DefaultClusterDNS)) || s.WriteKubeconfigMode != 0o600 ||
		s.NodeName != "node-1" || len(s.NodeIPs) != 1 || !s.NodeIPs[0].Equal(net.ParseIP("192.0.2.10")) ||
		!s.BindAddress.Equal(net.IPv4zero) || s.DataDir != DefaultDataDir {
		t.Errorf("parsed %+v", *s)
	}
	if got := s.ServiceIP().String(); got != "10.43.0.1" {
		t.Errorf("ServiceIP %s, want 10.43.0.1", got)
	}
	if got := s.APIServerURL(); got != "https://127.0.0.1:6443" {
		t.Errorf("APIServerURL %s", got)
	}
}

func TestParseNormalizes(t *testing.T) {
	r := valid()
	r.NodeName = "Node-1.Example.COM"
	r.DataDir, r.RunDir = "rel/data", "rel/run"
	r.NodeIPs = []string{"192.0.2.10", "2001:db8::10"}
	r.WriteKubeconfigMode = ""
	s, err := ParseServer(r)
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if s.NodeName != "node-1.example.com" || s.DataDir != filepath.Join(wd, "rel/data") || s.RunDir != filepath.Join(wd, "rel/run") ||
		len(s.NodeIPs) != 2 || s.WriteKubeconfigMode != DefaultWriteKubeconfigMode {
		t.Errorf("parsed %+v", *s)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*ServerRaw)
		want   string
	}{
		{"resolv.conf missing", func(r *ServerRaw) { r.ResolvConf = "/nonexistent/resolv.conf" },
			`--resolv-conf: open /nonexistent/resolv.conf: no such file or directory`},
		{"resolv.conf without a nameserver", func(r *ServerRaw) { r.ResolvConf = "/dev/null" },
			`--resolv-conf /dev/null has no nameserver line`},
		{"cluster CIDR prefix too long", func(r *ServerRaw) { r.ClusterCIDR = "10.42.0.0/33" },
			`--cluster-cidr "10.42.0.0/33" is not a CIDR (like 10.42.0.0/16): invalid CIDR address: 10.42.0.0/33`},
		{"cluster-init and server", func(r *ServerRaw) {
			r.ClusterInit, r.JoinURL, r.Token = true, "https://192.0.2.1:6443", "a-long-secret"
		},
			`--cluster-init starts a new cluster and --server joins an existing one: give one of them`},
		{"join without a token", func(r *ServerRaw) { r.JoinURL = "https://192.0.2.1:6443" },
			`joining a server with --server needs the cluster's server token`},
		{"join URL not https", func(r *ServerRaw) { r.JoinURL, r.Token = "192.0.2.1:6443", "a-long-secret" },
			`--server "192.0.2.1:6443" must be the first server's https URL`},
		{"reset and join", func(r *ServerRaw) {
			r.ClusterReset, r.JoinURL, r.Token = true, "https://192.0.2.1:6443", "a-long-secret"
		},
			`--cluster-reset makes this server the only member of its own etcd cluster; it does not go with --server`},
		{"external and cluster-init", func(r *ServerRaw) {
			r.DatastoreEndpoint, r.ClusterInit, r.Token = []string{"https://192.0.2.5:2379"}, true, "a-long-secret"
		}, `--datastore-endpoint uses an external etcd: it does not go with --cluster-init`},
		{"external endpoint not a URL", func(r *ServerRaw) { r.DatastoreEndpoint, r.Token = []string{"192.0.2.5:2379"}, "a-long-secret" },
			`--datastore-endpoint "192.0.2.5:2379" is not an etcd client URL`},
		{"external without a token", func(r *ServerRaw) {
			r.DatastoreEndpoint, r.DataDir = []string{"https://192.0.2.5:2379"}, "/nonexistent"
		},
			`--datastore-endpoint needs the cluster's token`},
		{"external TLS file missing", func(r *ServerRaw) {
			r.DatastoreEndpoint, r.Token, r.DatastoreCAFile = []string{"https://192.0.2.5:2379"}, "a-long-secret", "/nonexistent/ca.crt"
		}, `--datastore-cafile: stat /nonexistent/ca.crt: no such file or directory`},
		{"TLS file without external", func(r *ServerRaw) { r.DatastoreCAFile = "/dev/null" },
			`--datastore-cafile is only for an external etcd; give --datastore-endpoint too`},
		{"cluster CIDR not a CIDR", func(r *ServerRaw) { r.ClusterCIDR = "banana" },
			`--cluster-cidr "banana" is not a CIDR (like 10.42.0.0/16)`},
		{"cluster CIDR host bits", func(r *ServerRaw) { r.ClusterCIDR = "10.42.0.1/16" },
			`--cluster-cidr "10.42.0.1/16" has host bits set; did you mean 10.42.0.0/16?`},
		{"cluster CIDR too small", func(r *ServerRaw) { r.ClusterCIDR = "10.42.0.0/25" },
			`--cluster-cidr 10.42.0.0/25 is too small: each node gets a /24 of it`},
		{"service CIDR not a CIDR", func(r *ServerRaw) { r.ServiceCIDR = "10.43.0.0" },
			`--service-cidr "10.43.0.0" is not a CIDR`},
		{"service CIDR host bits", func(r *ServerRaw) { r.ServiceCIDR = "10.43.0.10/16" },
			`--service-cidr "10.43.0.10/16" has host bits set; did you mean 10.43.0.0/16?`},
		{"overlap", func(r *ServerRaw) {
			r.ClusterCIDR, r.ServiceCIDR, r.ClusterDNS = "10.0.0.0/8", "10.43.0.0/16", "10.43.0.10"
		},
			`--cluster-cidr 10.0.0.0/8 and --service-cidr 10.43.0.0/16 overlap: pods and services need separate ranges`},
		{"overlap, service range larger", func(r *ServerRaw) { r.ServiceCIDR, r.ClusterDNS = "10.0.0.0/8", "10.0.0.10" },
			`--cluster-cidr 10.42.0.0/16 and --service-cidr 10.0.0.0/8 overlap`},
		{"cluster DNS outside the service CIDR", func(r *ServerRaw) { r.ClusterDNS = "10.42.0.10" },
			`--cluster-dns 10.42.0.10 is outside --service-cidr 10.43.0.0/16`},
		{"cluster DNS not an IP", func(r *ServerRaw) { r.ClusterDNS = "dns" },
			`--cluster-dns "dns" is not an IP address`},
		{"node IP", func(r *ServerRaw) { r.NodeIPs = []string{"192.0.2.10", "300.1.1.1"} },
			`--node-ip "300.1.1.1" is not an IP address`},
		{"node name", func(r *ServerRaw) { r.NodeName = "my_node" },
			`--node-name "my_node" is not a valid Kubernetes node name: a lowercase RFC 1123 subdomain must consist of`},
		{"bind address", func(r *ServerRaw) { r.BindAddress = "localhost" },
			`--bind-address "localhost" is not an IP address`},
		{"port zero", func(r *ServerRaw) { r.HTTPSPort = 0 }, `--https-listen-port 0 is not a TCP port`},
		{"port too high", func(r *ServerRaw) { r.HTTPSPort = 65536 }, `--https-listen-port 65536 is not a TCP port`},
		{"cluster domain", func(r *ServerRaw) { r.ClusterDomain = "cluster_local" },
			`--cluster-domain "cluster_local" is not a DNS name`},
		{"kubeconfig mode not octal", func(r *ServerRaw) { r.WriteKubeconfigMode = "rw-r--r--" },
			`--write-kubeconfig-mode: "rw-r--r--" is not an octal file mode like 0600`},
		{"kubeconfig mode too large", func(r *ServerRaw) { r.WriteKubeconfigMode = "1777" },
			`--write-kubeconfig-mode: "1777" is not an octal file mode like 0600`},
		{"kubelet arg with dashes", func(r *ServerRaw) { r.KubeletArgs = []string{"--foo=bar"} },
			`--kubelet-arg "--foo=bar" must be flag=value, without leading dashes`},
		{"apiserver arg without a flag", func(r *ServerRaw) { r.APIServerArgs = []string{"=x"} },
			`--kube-apiserver-arg "=x" must be flag=value, without leading dashes`},
		{"controller-manager arg", func(r *ServerRaw) { r.ControllerManagerArgs = []string{"-v=2"} },
			`--kube-controller-manager-arg "-v=2" must be flag=value`},
		{"scheduler arg", func(r *ServerRaw) { r.SchedulerArgs = []string{"--v=2"} },
			`--kube-scheduler-arg "--v=2" must be flag=value`},
		{"kube-proxy arg", func(r *ServerRaw) { r.KubeProxyArgs = []string{"--v"} },
			`--kube-proxy-arg "--v" must be flag=value`},
		{"kubeconfig mode with non-octal digits", func(r *ServerRaw) { r.WriteKubeconfigMode = "0999" },
			`--write-kubeconfig-mode: "0999" is not an octal file mode like 0600`},
		{"kubeconfig mode with trailing junk", func(r *ServerRaw) { r.WriteKubeconfigMode = "644x" },
			`--write-kubeconfig-mode: "644x" is not an octal file mode like 0600`},
		{"empty data dir", func(r *ServerRaw) { r.DataDir = "" }, `--data-dir and --run-dir must not be empty`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := valid()
			tc.change(&r)
			_, err := ParseServer(r)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
			if n := len(strings.Split(err.Error(), "\n")); n != 1 {
				t.Errorf("%d errors for one bad setting: %q", n, err)
			}
		})
	}
}

// TestParseArgsAccepted: flag=value and a bare flag (a boolean) are fine.
func TestParseArgsAccepted(t *testing.T) {
	r := valid()
	r.KubeletArgs = []string{"max-pods=200", "v=2"}
	r.APIServerArgs = []string{"enable-admission-plugins=NodeRestriction", "profiling"}
	if _, err := ParseServer(r); err != nil {
		t.Fatal(err)
	}
}

// TestParseReportsEverything: every problem comes back at once, one per line, so that a user
// fixes a config in one round.
func TestParseReportsEverything(t *testing.T) {
	r := valid()
	r.ClusterCIDR = "banana"
	r.ServiceCIDR = "10.43.0.1/16"
	r.ClusterDNS = "x"
	r.NodeIPs = []string{"nope"}
	r.NodeName = "Bad_Name"
	r.WriteKubeconfigMode = "abc"
	r.KubeletArgs = []string{"--foo=bar"}
	r.KubeProxyArgs = []string{"--bar=baz"}
	_, err := ParseServer(r)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	for _, want := range []string{
		`--cluster-cidr "banana"`, `--service-cidr "10.43.0.1/16" has host bits set`, `--cluster-dns "x"`,
		`--node-ip "nope"`, `--node-name "bad_name"`, `--write-kubeconfig-mode: "abc"`,
		`--kubelet-arg "--foo=bar"`, `--kube-proxy-arg "--bar=baz"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q", want)
		}
	}
	if len(lines) != 8 {
		t.Errorf("%d lines, want 8:\n%s", len(lines), err)
	}
}

// TestParseDefaultNodeIP: without --node-ip the node IP is the address of the default route,
// and without a default route the error says to pass --node-ip. Which one applies depends on
// this host, so the test checks that Parse agrees with defaultRouteIP.
func TestParseDefaultNodeIP(t *testing.T) {
	r := valid()
	r.NodeIPs = nil
	s, err := ParseServer(r)
	ip, routeErr := defaultRouteIP()
	switch {
	case routeErr != nil:
		t.Logf("this host has no default route: %v", routeErr)
		if err == nil || !strings.Contains(err.Error(), "no --node-ip given and no default route to take the node IP from; pass --node-ip") {
			t.Fatalf("got %v", err)
		}
	case err != nil:
		t.Fatal(err)
	default:
		if len(s.NodeIPs) != 1 || !s.NodeIPs[0].Equal(ip) || s.NodeIPs[0].To4() == nil || s.NodeIPs[0].IsLoopback() {
			t.Fatalf("node IPs %v, want [%v]", s.NodeIPs, ip)
		}
	}
}

// TestParseDefaultNodeName: without --node-name the node is named after the host, in lower case.
func TestParseDefaultNodeName(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	r := valid()
	r.NodeName = ""
	s, err := ParseServer(r)
	if err != nil {
		t.Skipf("this host's name is not a valid node name: %v", err)
	}
	if s.NodeName != strings.ToLower(host) {
		t.Errorf("node name %q, want %q", s.NodeName, strings.ToLower(host))
	}
}
