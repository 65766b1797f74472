package flannel

import (
	"encoding/json"
	"net"
)

// netConfJSON is the part of flannel's net-conf.json ketch sets; flannel derives the rest
// (SubnetLen and friends matter only to its etcd subnet manager, not the kube one).
type netConfJSON struct {
	Network     string `json:",omitempty"`
	IPv6Network string `json:",omitempty"`
	// Both are always written: flannel turns IPv4 on when the key is missing.
	EnableIPv4 bool
	EnableIPv6 bool
	Backend    backendJSON
}

// backendJSON leaves vxlan's VNI (1) and port (the kernel's 8472) at flannel's defaults, which
// nodes running upstream flannel use too.
type backendJSON struct {
	Type string
}

// netConf is the net-conf.json of cfg's network.
func netConf(cfg Config) ([]byte, error) {
	backendType := cfg.Backend
	if backendType == "" {
		backendType = BackendVXLAN
	}
	// Masked, so that a CIDR written with host bits (10.42.0.1/16) still names the network.
	network := (&net.IPNet{IP: cfg.ClusterCIDR.IP.Mask(cfg.ClusterCIDR.Mask), Mask: cfg.ClusterCIDR.Mask}).String()
	c := netConfJSON{Backend: backendJSON{Type: backendType}}
	if cfg.ClusterCIDR.IP.To4() != nil {
		c.Network, c.EnableIPv4 = network, true
	} else {
		c.IPv6Network, c.EnableIPv6 = network, true
	}
	return json.MarshalIndent(c, "", "  ")
}
