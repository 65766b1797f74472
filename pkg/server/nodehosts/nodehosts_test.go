package nodehosts

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func node(name string, addrs ...corev1.NodeAddress) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Addresses: addrs}}
}

func TestHosts(t *testing.T) {
	internal := func(ip string) corev1.NodeAddress {
		return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip}
	}
	nodes := []*corev1.Node{
		node("b", internal("10.0.0.2"), corev1.NodeAddress{Type: corev1.NodeHostName, Address: "b"}),
		node("a", internal("10.0.0.1"), internal("fd00::1"), corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.1"}),
		node("no-address"),
	}
	want := "10.0.0.1 a\nfd00::1 a\n10.0.0.2 b\n"
	if got := Hosts(nodes); got != want {
		t.Errorf("Hosts = %q, want %q", got, want)
	}
	if got := Hosts(nil); got != "" {
		t.Errorf("Hosts(nil) = %q, want empty", got)
	}
	// The input order does not matter, so an unchanged node set never rewrites the ConfigMap.
	if got := Hosts([]*corev1.Node{nodes[2], nodes[0], nodes[1]}); got != want {
		t.Errorf("Hosts reordered = %q, want %q", got, want)
	}
}
