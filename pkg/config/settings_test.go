package config

import (
	"strings"
	"testing"
)

func settings() ClusterSettings {
	return ClusterSettings{ClusterCIDR: "10.42.0.0/16", ServiceCIDR: "10.43.0.0/16", ClusterDNS: "10.43.0.10", ClusterDomain: "cluster.local", FlannelBackend: "vxlan"}
}

func TestAgree(t *testing.T) {
	cluster := settings()
	if err := cluster.Agree(settings()); err != nil {
		t.Fatal(err)
	}
	mine := settings()
	mine.ClusterCIDR, mine.FlannelBackend = "10.52.0.0/16", "host-gw"
	err := cluster.Agree(mine)
	for _, want := range []string{"--cluster-cidr is 10.52.0.0/16 here but 10.42.0.0/16", "--flannel-backend is host-gw here but vxlan"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Agree: %v, want it to say %q", err, want)
		}
	}
}
