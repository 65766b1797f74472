package cni

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// readBridge writes b and returns the conflist's bridge plugin entry.
func readBridge(t *testing.T, b Bridge) map[string]any {
	t.Helper()
	if err := b.Write(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(b.ConfDir, ConfFile))
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(data, &conf); err != nil {
		t.Fatalf("conflist is not JSON: %v\n%s", err, data)
	}
	if conf.Name != "ketch" || len(conf.Plugins) != 2 || conf.Plugins[0]["type"] != "bridge" || conf.Plugins[1]["type"] != "portmap" {
		t.Fatalf("unexpected conflist:\n%s", data)
	}
	if _, err := os.Stat(filepath.Join(b.ConfDir, ConfFile+".tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	return conf.Plugins[0]
}

func TestBridgeDefaults(t *testing.T) {
	dir := t.TempDir()
	br := readBridge(t, Bridge{
		ConfDir: dir, IPAMDir: "/var/lib/ipam", Bridge: "cni0",
		PodCIDRs: []string{"10.42.1.0/24", "fd00:42:1::/64"},
	})
	if br["bridge"] != "cni0" || br["isGateway"] != true || br["ipMasq"] != true || br["hairpinMode"] != true {
		t.Errorf("bridge plugin = %v", br)
	}
	if _, ok := br["mtu"]; ok {
		t.Errorf("mtu set although Bridge.MTU is 0: %v", br["mtu"])
	}
	ipam := br["ipam"].(map[string]any)
	if ipam["type"] != "host-local" || ipam["dataDir"] != "/var/lib/ipam" {
		t.Errorf("ipam = %v", ipam)
	}
	ranges := ipam["ranges"].([]any)
	if len(ranges) != 2 || ranges[0].([]any)[0].(map[string]any)["subnet"] != "10.42.1.0/24" ||
		ranges[1].([]any)[0].(map[string]any)["subnet"] != "fd00:42:1::/64" {
		t.Errorf("ranges = %v", ranges)
	}
}

func TestBridgeFlannel(t *testing.T) {
	dir := t.TempDir()
	br := readBridge(t, Bridge{
		ConfDir: dir, IPAMDir: "/var/lib/ipam", Bridge: "cni0",
		PodCIDRs: []string{"10.42.1.0/24"}, MTU: 1450, NoMasquerade: true,
	})
	if br["ipMasq"] != false {
		t.Errorf("ipMasq = %v, want false", br["ipMasq"])
	}
	// JSON numbers decode as float64.
	if br["mtu"] != float64(1450) {
		t.Errorf("mtu = %v, want 1450", br["mtu"])
	}
}
