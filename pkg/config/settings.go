package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
)

// ClusterSettings is Cluster on the wire: what a joining agent takes from its server, and what
// servers compare with each other before they share a datastore.
type ClusterSettings struct {
	ClusterCIDR    string `json:"clusterCIDR"`
	ServiceCIDR    string `json:"serviceCIDR"`
	ClusterDNS     string `json:"clusterDNS"`
	ClusterDomain  string `json:"clusterDomain"`
	FlannelBackend string `json:"flannelBackend"`
}

// Settings is c on the wire.
func (c *Cluster) Settings() ClusterSettings {
	return ClusterSettings{
		ClusterCIDR: c.ClusterCIDR.String(), ServiceCIDR: c.ServiceCIDR.String(), ClusterDNS: c.ClusterDNS.String(),
		ClusterDomain: c.ClusterDomain, FlannelBackend: c.FlannelBackend,
	}
}

// Cluster parses settings another node sent.
func (s ClusterSettings) Cluster() (*Cluster, error) {
	c := &Cluster{ClusterDNS: net.ParseIP(s.ClusterDNS), ClusterDomain: s.ClusterDomain, FlannelBackend: s.FlannelBackend}
	var errs []error
	var err error
	if _, c.ClusterCIDR, err = net.ParseCIDR(s.ClusterCIDR); err != nil {
		errs = append(errs, fmt.Errorf("cluster CIDR: %w", err))
	}
	if _, c.ServiceCIDR, err = net.ParseCIDR(s.ServiceCIDR); err != nil {
		errs = append(errs, fmt.Errorf("service CIDR: %w", err))
	}
	if c.ClusterDNS == nil {
		errs = append(errs, fmt.Errorf("cluster DNS %q is not an IP address", s.ClusterDNS))
	}
	if !slices.Contains(FlannelBackends, c.FlannelBackend) {
		errs = append(errs, fmt.Errorf("flannel backend %q is not one of %s", c.FlannelBackend, strings.Join(FlannelBackends, ", ")))
	}
	return c, errors.Join(errs...)
}

// Agree returns an error naming every setting in which mine differs from the cluster's (s), with
// both values, or nil: every server of a cluster must be given the same.
func (s ClusterSettings) Agree(mine ClusterSettings) error {
	var diffs []string
	for _, f := range []struct{ flag, mine, cluster string }{
		{"--cluster-cidr", mine.ClusterCIDR, s.ClusterCIDR},
		{"--service-cidr", mine.ServiceCIDR, s.ServiceCIDR},
		{"--cluster-dns", mine.ClusterDNS, s.ClusterDNS},
		{"--cluster-domain", mine.ClusterDomain, s.ClusterDomain},
		{"--flannel-backend", mine.FlannelBackend, s.FlannelBackend},
	} {
		if !sameValue(f.mine, f.cluster) {
			diffs = append(diffs, fmt.Sprintf("%s is %s here but %s on the cluster's servers", f.flag, f.mine, f.cluster))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("this server's settings differ from the cluster's, and every server must have the same: %s; start it with the cluster's values", strings.Join(diffs, "; "))
}

// sameValue compares two settings, IPs by value (10.43.0.10 and its IPv6-mapped form agree).
func sameValue(a, b string) bool {
	if ipA, ipB := net.ParseIP(a), net.ParseIP(b); ipA != nil && ipB != nil {
		return ipA.Equal(ipB)
	}
	return a == b
}
