package flannel

import (
	"encoding/json"
	"net"
	"path/filepath"
	"testing"

	"github.com/flannel-io/flannel/pkg/ip"
	"github.com/flannel-io/flannel/pkg/subnet"
)

func cidr(t *testing.T, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNetConf(t *testing.T) {
	for _, tc := range []struct {
		name, backend, cidr string
		want                string
	}{
		{"default is vxlan", "", "10.42.0.0/16",
			`{"Network":"10.42.0.0/16","EnableIPv4":true,"EnableIPv6":false,"Backend":{"Type":"vxlan"}}`},
		{"vxlan", BackendVXLAN, "10.42.0.0/16",
			`{"Network":"10.42.0.0/16","EnableIPv4":true,"EnableIPv6":false,"Backend":{"Type":"vxlan"}}`},
		{"host-gw", BackendHostGW, "10.42.0.0/16",
			`{"Network":"10.42.0.0/16","EnableIPv4":true,"EnableIPv6":false,"Backend":{"Type":"host-gw"}}`},
		{"ipv6", BackendVXLAN, "fd00:42::/56",
			`{"IPv6Network":"fd00:42::/56","EnableIPv4":false,"EnableIPv6":true,"Backend":{"Type":"vxlan"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := netConf(Config{Backend: tc.backend, ClusterCIDR: cidr(t, tc.cidr)})
			if err != nil {
				t.Fatal(err)
			}
			var got, want any
			if err := json.Unmarshal(data, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
				t.Errorf("net-conf.json = %s, want %s", g, w)
			}

			// What flannel makes of it.
			sc, err := subnet.ParseConfig(string(data))
			if err != nil {
				t.Fatalf("flannel rejects %s: %v", data, err)
			}
			wantType := tc.backend
			if wantType == "" {
				wantType = BackendVXLAN
			}
			if sc.BackendType != wantType {
				t.Errorf("backend type = %q, want %q", sc.BackendType, wantType)
			}
			v6 := tc.cidr == "fd00:42::/56"
			if sc.EnableIPv4 == v6 || sc.EnableIPv6 != v6 {
				t.Errorf("EnableIPv4=%v EnableIPv6=%v for %s", sc.EnableIPv4, sc.EnableIPv6, tc.cidr)
			}
			if !v6 && sc.Network.String() != tc.cidr {
				t.Errorf("Network = %s, want %s", sc.Network, tc.cidr)
			}
			if v6 && sc.IPv6Network.String() != tc.cidr {
				t.Errorf("IPv6Network = %s, want %s", sc.IPv6Network, tc.cidr)
			}
			if err := subnet.CheckNetworkConfig(sc); err != nil {
				t.Errorf("flannel's config check: %v", err)
			}
		})
	}
}

func TestNetConfMasksHostBits(t *testing.T) {
	c := &net.IPNet{IP: net.ParseIP("10.42.3.4").To4(), Mask: net.CIDRMask(16, 32)}
	data, err := netConf(Config{ClusterCIDR: c})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := subnet.ParseConfig(string(data))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Network.String() != "10.42.0.0/16" {
		t.Errorf("Network = %s", sc.Network)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteNetConf(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc", "flannel")
	path, err := writeNetConf(Config{ConfDir: dir, ClusterCIDR: cidr(t, "10.42.0.0/16"), Backend: BackendHostGW})
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, NetConfFile) {
		t.Errorf("path = %s", path)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func TestCheck(t *testing.T) {
	ok := func() Config {
		return Config{
			NodeName: "n1", Kubeconfig: "/k", ClusterCIDR: cidr(t, "10.42.0.0/16"),
			NodeIP: net.ParseIP("192.0.2.1"), ConfDir: "/c", SubnetFile: "/s",
		}
	}
	c := ok()
	if v6, err := c.check(); err != nil || v6 {
		t.Fatalf("check = %v, %v", v6, err)
	}
	if c.Backend != BackendVXLAN {
		t.Errorf("default backend = %q", c.Backend)
	}
	c = ok()
	c.ClusterCIDR, c.NodeIP = cidr(t, "fd00:42::/56"), net.ParseIP("2001:db8::1")
	if v6, err := c.check(); err != nil || !v6 {
		t.Errorf("IPv6: check = %v, %v", v6, err)
	}
	for name, mutate := range map[string]func(*Config){
		"no node name":   func(c *Config) { c.NodeName = "" },
		"no kubeconfig":  func(c *Config) { c.Kubeconfig = "" },
		"no CIDR":        func(c *Config) { c.ClusterCIDR = nil },
		"no node IP":     func(c *Config) { c.NodeIP = nil },
		"no conf dir":    func(c *Config) { c.ConfDir = "" },
		"no subnet file": func(c *Config) { c.SubnetFile = "" },
		"udp backend":    func(c *Config) { c.Backend = "udp" },
		"mixed families": func(c *Config) { c.NodeIP = net.ParseIP("2001:db8::1") },
	} {
		c := ok()
		mutate(&c)
		if _, err := c.check(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// The subnet file flannel writes is read back on the next start to clean up stale rules.
func TestReadSubnetFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "subnet.env")
	if p := readSubnetFile(path); !p.network.Empty() || !p.subnet.Empty() {
		t.Errorf("missing file: %+v", p)
	}
	sc, err := subnet.ParseConfig(`{"Network":"10.42.0.0/16","EnableIPv4":true,"Backend":{"Type":"vxlan"}}`)
	if err != nil {
		t.Fatal(err)
	}
	sn := ip.FromIPNet(cidr(t, "10.42.7.0/24"))
	if err := subnet.WriteSubnetFile(path, sc, true, sn, ip.IP6Net{}, 1450); err != nil {
		t.Fatal(err)
	}
	p := readSubnetFile(path)
	if p.network.String() != "10.42.0.0/16" || !p.subnet.Equal(sn) {
		t.Errorf("read back network %s subnet %s", p.network, p.subnet)
	}
}
