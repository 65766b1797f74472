// Package cni writes the node's pod network configuration for containerd's CRI plugin, which
// runs the CNI plugins (bridge, host-local, portmap) that ketch carries.
package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// ConfFile is the name of ketch's network in the CNI conf dir.
const ConfFile = "10-ketch.conflist"

// Bridge is the single-node pod network: a bridge per node, addresses from the node's pod CIDRs.
type Bridge struct {
	ConfDir  string // containerd's CNI conf dir
	IPAMDir  string // host-local's allocations; per node, since several may share a machine
	Bridge   string // the bridge's name
	PodCIDRs []string
	// MTU is the MTU of the bridge and the pods' interfaces; 0 leaves the plugin's default
	// (1500), which is too large under an overlay such as flannel's vxlan.
	MTU int
	// NoMasquerade is set when something else masquerades pod traffic leaving the cluster
	// (flannel): the bridge plugin's ipMasq would also masquerade traffic to pods on other
	// nodes, which then see the node's address instead of the pod's.
	NoMasquerade bool
}

// Write writes the network's conflist atomically; containerd picks up the change by itself.
func (b Bridge) Write() error {
	ranges := make([][]map[string]string, 0, len(b.PodCIDRs))
	for _, c := range b.PodCIDRs {
		ranges = append(ranges, []map[string]string{{"subnet": c}})
	}
	bridge := map[string]any{
		"type": "bridge", "bridge": b.Bridge, "isGateway": true, "ipMasq": !b.NoMasquerade,
		"hairpinMode": true, "forceAddress": true,
		"ipam": map[string]any{
			"type": "host-local", "dataDir": b.IPAMDir, "ranges": ranges,
			"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
		},
	}
	if b.MTU > 0 {
		bridge["mtu"] = b.MTU
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "ketch",
		"plugins": []any{
			bridge,
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(b.ConfDir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(b.ConfDir, ConfFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// WaitPodCIDRs waits until kube-controller-manager has given the node its pod CIDRs.
func WaitPodCIDRs(ctx context.Context, client kubernetes.Interface, nodeName string) ([]string, error) {
	for {
		node, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		switch {
		case err == nil && len(node.Spec.PodCIDRs) > 0:
			return node.Spec.PodCIDRs, nil
		case err == nil && node.Spec.PodCIDR != "":
			return []string{node.Spec.PodCIDR}, nil
		case err != nil:
			klog.V(2).InfoS("Waiting for the node to register", "node", nodeName, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for node %s's pod CIDR: %w", nodeName, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
