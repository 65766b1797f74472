package servicelb

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// node is a Ready node with the given addresses: "1.2.3.4" is an InternalIP, "ext:1.2.3.4" an
// ExternalIP.
func node(name string, addrs ...string) *v1.Node {
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}},
		Status:     v1.NodeStatus{Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}},
	}
	for _, a := range addrs {
		t := v1.NodeInternalIP
		if ip, ok := strings.CutPrefix(a, "ext:"); ok {
			t, a = v1.NodeExternalIP, ip
		}
		n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: t, Address: a})
	}
	return n
}

func labelled(n *v1.Node, k, v string) *v1.Node {
	n.Labels[k] = v
	return n
}

func notReady(n *v1.Node) *v1.Node {
	n.Status.Conditions[0].Status = v1.ConditionFalse
	return n
}

// svc is an IPv4 LoadBalancer Service "ns/name" created age minutes after epoch, with ports like
// "80/TCP" or "53" (no protocol: the API default, TCP).
func svc(nsName string, age int, ports ...string) *v1.Service {
	ns, name, _ := strings.Cut(nsName, "/")
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{}, Annotations: map[string]string{},
			CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(age) * time.Minute))},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeLoadBalancer, IPFamilies: []v1.IPFamily{v1.IPv4Protocol}},
	}
	for _, p := range ports {
		num, proto, _ := strings.Cut(p, "/")
		var port int32
		fmt.Sscan(num, &port)
		s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Port: port, Protocol: v1.Protocol(proto)})
	}
	return s
}

func with(s *v1.Service, f func(*v1.Service)) *v1.Service {
	f(s)
	return s
}

func TestAssign(t *testing.T) {
	tests := []struct {
		name      string
		services  []*v1.Service
		nodes     []*v1.Node
		want      map[string]string // ns/name: IPs, comma-separated ("" for not served)
		conflicts []string          // "ns/name: message"
	}{
		{
			name:     "all ready nodes, sorted",
			services: []*v1.Service{svc("default/web", 0, "80/TCP")},
			nodes:    []*v1.Node{node("b", "10.0.0.2"), node("a", "10.0.0.10"), node("c", "10.0.0.1")},
			want:     map[string]string{"default/web": "10.0.0.1,10.0.0.2,10.0.0.10"},
		},
		{
			name: "only LoadBalancer Services of no class or ketch's",
			services: []*v1.Service{
				with(svc("default/cluster", 0, "80"), func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeClusterIP }),
				with(svc("default/nodeport", 0, "80"), func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeNodePort }),
				with(svc("default/metallb", 0, "80"), func(s *v1.Service) { s.Spec.LoadBalancerClass = ptr.To("metallb.io/metallb") }),
				with(svc("default/ketch", 1, "81"), func(s *v1.Service) { s.Spec.LoadBalancerClass = ptr.To(loadBalancerClass) }),
			},
			nodes: []*v1.Node{node("a", "10.0.0.1")},
			want:  map[string]string{"default/ketch": "10.0.0.1"},
		},
		{
			name:     "NotReady and condition-less nodes do not serve; cordoned ones do",
			services: []*v1.Service{svc("default/web", 0, "80")},
			nodes: []*v1.Node{
				notReady(node("down", "10.0.0.1")),
				func() *v1.Node { n := node("new", "10.0.0.2"); n.Status.Conditions = nil; return n }(),
				func() *v1.Node { n := node("cordoned", "10.0.0.3"); n.Spec.Unschedulable = true; return n }(),
			},
			want: map[string]string{"default/web": "10.0.0.3"},
		},
		{
			name:     "enablelb=true on some node limits serving to the labelled nodes",
			services: []*v1.Service{svc("default/web", 0, "80")},
			nodes: []*v1.Node{
				labelled(node("a", "10.0.0.1"), labelEnableLB, "true"),
				node("b", "10.0.0.2"),
				labelled(node("c", "10.0.0.3"), labelEnableLB, "false"),
				labelled(node("d", "10.0.0.4"), labelEnableLB, "true"),
			},
			want: map[string]string{"default/web": "10.0.0.1,10.0.0.4"},
		},
		{
			name:     "enablelb=false alone excludes only that node",
			services: []*v1.Service{svc("default/web", 0, "80")},
			nodes:    []*v1.Node{labelled(node("a", "10.0.0.1"), labelEnableLB, "false"), node("b", "10.0.0.2")},
			want:     map[string]string{"default/web": "10.0.0.2"},
		},
		{
			name:     "the only enablelb=true node is NotReady: nobody serves, the others stay out",
			services: []*v1.Service{svc("default/web", 0, "80")},
			nodes:    []*v1.Node{notReady(labelled(node("a", "10.0.0.1"), labelEnableLB, "true")), node("b", "10.0.0.2")},
			want:     map[string]string{"default/web": ""},
		},
		{
			name: "pools by Service label or annotation, the label first",
			services: []*v1.Service{
				with(svc("default/blue", 0, "80"), func(s *v1.Service) { s.Labels[labelLBPool] = "blue" }),
				with(svc("default/green", 0, "81"), func(s *v1.Service) { s.Annotations[labelLBPool] = "green" }),
				with(svc("default/both", 0, "82"), func(s *v1.Service) {
					s.Labels[labelLBPool], s.Annotations[labelLBPool] = "blue", "green"
				}),
				with(svc("default/empty", 0, "83"), func(s *v1.Service) { s.Labels[labelLBPool] = "red" }),
				svc("default/any", 0, "84"),
			},
			nodes: []*v1.Node{
				labelled(node("a", "10.0.0.1"), labelLBPool, "blue"),
				labelled(node("b", "10.0.0.2"), labelLBPool, "green"),
				labelled(node("c", "10.0.0.3"), labelLBPool, "blue"),
				node("d", "10.0.0.4"),
			},
			want: map[string]string{
				"default/blue": "10.0.0.1,10.0.0.3", "default/green": "10.0.0.2", "default/both": "10.0.0.1,10.0.0.3",
				"default/empty": "", "default/any": "10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4",
			},
		},
		{
			name:     "pool within the enablelb nodes",
			services: []*v1.Service{with(svc("default/web", 0, "80"), func(s *v1.Service) { s.Labels[labelLBPool] = "p" })},
			nodes: []*v1.Node{
				labelled(labelled(node("a", "10.0.0.1"), labelLBPool, "p"), labelEnableLB, "true"),
				labelled(node("b", "10.0.0.2"), labelLBPool, "p"),
				labelled(node("c", "10.0.0.3"), labelEnableLB, "true"),
			},
			want: map[string]string{"default/web": "10.0.0.1"},
		},
		{
			name:     "external and internal IPs, duplicates and junk dropped",
			services: []*v1.Service{svc("default/web", 0, "80")},
			nodes: []*v1.Node{
				node("a", "192.168.1.5", "ext:203.0.113.7"),
				node("b", "192.168.1.5", "not-an-ip"),
				func() *v1.Node {
					n := node("c", "192.168.1.6")
					n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: v1.NodeHostName, Address: "10.9.9.9"})
					return n
				}(),
			},
			want: map[string]string{"default/web": "192.168.1.5,192.168.1.6,203.0.113.7"},
		},
		{
			name: "IP families",
			services: []*v1.Service{
				svc("default/v4", 0, "80"),
				with(svc("default/v6", 0, "81"), func(s *v1.Service) { s.Spec.IPFamilies = []v1.IPFamily{v1.IPv6Protocol} }),
				with(svc("default/dual", 0, "82"), func(s *v1.Service) {
					s.Spec.IPFamilies = []v1.IPFamily{v1.IPv6Protocol, v1.IPv4Protocol}
				}),
				with(svc("default/old", 0, "83"), func(s *v1.Service) {
					s.Spec.IPFamilies, s.Spec.ClusterIP, s.Spec.ClusterIPs = nil, "fd00::10", []string{"fd00::10"}
				}),
			},
			nodes: []*v1.Node{node("a", "10.0.0.1", "fd00::1"), node("b", "10.0.0.2", "ext:2001:db8::2")},
			want: map[string]string{
				"default/v4": "10.0.0.1,10.0.0.2", "default/v6": "2001:db8::2,fd00::1",
				"default/dual": "10.0.0.1,10.0.0.2,2001:db8::2,fd00::1", "default/old": "2001:db8::2,fd00::1",
			},
		},
		{
			name:      "the older Service keeps the port, whatever the input order",
			services:  []*v1.Service{svc("default/new", 5, "8080/TCP"), svc("default/web", 1, "8080/TCP")},
			nodes:     []*v1.Node{node("a", "10.0.0.1"), node("b", "10.0.0.2")},
			want:      map[string]string{"default/web": "10.0.0.1,10.0.0.2", "default/new": ""},
			conflicts: []string{"default/new: port 8080/TCP on 10.0.0.1, 10.0.0.2 is already served by LoadBalancer Service default/web; change the port or delete that Service"},
		},
		{
			name:      "same age: namespace, then name decides",
			services:  []*v1.Service{svc("b/a", 0, "80"), svc("a/z", 0, "80"), svc("a/y", 0, "80")},
			nodes:     []*v1.Node{node("a", "10.0.0.1")},
			want:      map[string]string{"a/y": "10.0.0.1", "a/z": "", "b/a": ""},
			conflicts: []string{"a/z: port 80/TCP on 10.0.0.1 is already served by LoadBalancer Service a/y; change the port or delete that Service", "b/a: port 80/TCP on 10.0.0.1 is already served by LoadBalancer Service a/y; change the port or delete that Service"},
		},
		{
			name:     "same port, other protocol; no protocol means TCP",
			services: []*v1.Service{svc("default/dns-udp", 0, "53/UDP"), svc("default/dns-tcp", 1, "53"), svc("default/sctp", 2, "53/SCTP"), svc("default/tcp", 3, "53/TCP")},
			nodes:    []*v1.Node{node("a", "10.0.0.1")},
			want: map[string]string{
				"default/dns-udp": "10.0.0.1", "default/dns-tcp": "10.0.0.1", "default/sctp": "10.0.0.1", "default/tcp": "",
			},
			conflicts: []string{"default/tcp: port 53/TCP on 10.0.0.1 is already served by LoadBalancer Service default/dns-tcp; change the port or delete that Service"},
		},
		{
			name: "pools clash only where they overlap",
			services: []*v1.Service{
				with(svc("default/a", 0, "80"), func(s *v1.Service) { s.Labels[labelLBPool] = "x" }),
				svc("default/b", 1, "80"),
				with(svc("default/c", 2, "80"), func(s *v1.Service) { s.Labels[labelLBPool] = "y" }),
			},
			nodes: []*v1.Node{
				labelled(node("n1", "10.0.0.1"), labelLBPool, "x"),
				labelled(node("n2", "10.0.0.2"), labelLBPool, "x"),
				labelled(node("n3", "10.0.0.3"), labelLBPool, "y"),
			},
			want:      map[string]string{"default/a": "10.0.0.1,10.0.0.2", "default/b": "", "default/c": "10.0.0.3"},
			conflicts: []string{"default/b: port 80/TCP on 10.0.0.1, 10.0.0.2 is already served by LoadBalancer Service default/a; change the port or delete that Service"},
		},
		{
			name: "one conflict per Service: the first port in spec order, the IPs of one holder",
			services: []*v1.Service{
				with(svc("default/a", 0, "81"), func(s *v1.Service) { s.Labels[labelLBPool] = "x" }),
				with(svc("default/b", 1, "81"), func(s *v1.Service) { s.Labels[labelLBPool] = "y" }),
				svc("default/c", 2, "90", "81", "82"),
			},
			nodes: []*v1.Node{
				labelled(node("n1", "10.0.0.1"), labelLBPool, "x"),
				labelled(node("n2", "10.0.0.2"), labelLBPool, "y"),
			},
			want:      map[string]string{"default/a": "10.0.0.1", "default/b": "10.0.0.2", "default/c": ""},
			conflicts: []string{"default/c: port 81/TCP on 10.0.0.1 is already served by LoadBalancer Service default/a; change the port or delete that Service"},
		},
		{
			name:      "a losing Service claims nothing",
			services:  []*v1.Service{svc("default/a", 0, "80"), svc("default/b", 1, "80", "81"), svc("default/c", 2, "81")},
			nodes:     []*v1.Node{node("n", "10.0.0.1")},
			want:      map[string]string{"default/a": "10.0.0.1", "default/b": "", "default/c": "10.0.0.1"},
			conflicts: []string{"default/b: port 80/TCP on 10.0.0.1 is already served by LoadBalancer Service default/a; change the port or delete that Service"},
		},
		{
			name:     "the holder gone, the other Service is served",
			services: []*v1.Service{svc("default/b", 1, "80", "81")},
			nodes:    []*v1.Node{node("n", "10.0.0.1")},
			want:     map[string]string{"default/b": "10.0.0.1"},
		},
		{
			name:     "ports ketch uses on the node",
			services: []*v1.Service{svc("default/api", 0, "443", "6443"), svc("default/vxlan", 0, "8472/UDP"), svc("default/kubelet", 0, "10250"), svc("default/ok", 0, "8472/TCP", "6443/UDP")},
			nodes:    []*v1.Node{node("a", "10.0.0.1"), node("b", "10.0.0.2")},
			want:     map[string]string{"default/api": "", "default/vxlan": "", "default/kubelet": "", "default/ok": "10.0.0.1,10.0.0.2"},
			conflicts: []string{
				"default/api: port 6443/TCP on 10.0.0.1, 10.0.0.2 is used by the node itself (kube-apiserver); change the port",
				"default/kubelet: port 10250/TCP on 10.0.0.1, 10.0.0.2 is used by the node itself (the kubelet); change the port",
				"default/vxlan: port 8472/UDP on 10.0.0.1, 10.0.0.2 is used by the node itself (flannel's vxlan overlay); change the port",
			},
		},
		{
			name:     "no serving node: nothing served, nothing clashes",
			services: []*v1.Service{svc("default/a", 0, "80"), svc("default/b", 1, "80"), svc("default/api", 2, "6443")},
			nodes:    []*v1.Node{notReady(node("a", "10.0.0.1"))},
			want:     map[string]string{"default/a": "", "default/b": "", "default/api": ""},
		},
		{
			name:     "no Services",
			nodes:    []*v1.Node{node("a", "10.0.0.1")},
			want:     map[string]string{},
			services: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, conflicts := assign(tt.services, tt.nodes)
			gotIPs := map[string]string{}
			for name, ingress := range got {
				var ips []string
				for _, in := range ingress {
					if in.IPMode == nil || *in.IPMode != v1.LoadBalancerIPModeVIP || in.Hostname != "" || in.Ports != nil {
						t.Errorf("%s: ingress %+v, want only an IP with ipMode VIP", name, in)
					}
					ips = append(ips, in.IP)
				}
				gotIPs[name.String()] = strings.Join(ips, ",")
			}
			if !maps.Equal(gotIPs, tt.want) {
				t.Errorf("ingress:\n got %v\nwant %v", gotIPs, tt.want)
			}
			var gotConflicts []string
			for _, c := range conflicts {
				gotConflicts = append(gotConflicts, c.service.Namespace+"/"+c.service.Name+": "+c.message())
			}
			slices.Sort(gotConflicts)
			if !slices.Equal(gotConflicts, tt.conflicts) {
				t.Errorf("conflicts:\n got %q\nwant %q", gotConflicts, tt.conflicts)
			}
		})
	}
}

// TestAssignStable checks that the verdict does not depend on the order of the input, which the
// informer caches do not keep.
func TestAssignStable(t *testing.T) {
	services := []*v1.Service{svc("default/a", 0, "80"), svc("default/b", 0, "80"), svc("x/c", 0, "80"), svc("default/d", 1, "81")}
	nodes := []*v1.Node{node("n1", "10.0.0.2"), node("n2", "10.0.0.1", "ext:10.0.1.1")}
	want, wantConflicts := assign(services, nodes)
	for i := range 20 {
		s, n := slices.Clone(services), slices.Clone(nodes)
		// A deterministic shuffle: rotate and reverse.
		s = append(s[i%len(s):], s[:i%len(s)]...)
		if i%2 == 1 {
			slices.Reverse(n)
			slices.Reverse(s)
		}
		got, conflicts := assign(s, n)
		if !maps.EqualFunc(got, want, func(a, b []v1.LoadBalancerIngress) bool {
			return slices.EqualFunc(a, b, func(x, y v1.LoadBalancerIngress) bool { return x.IP == y.IP })
		}) {
			t.Fatalf("order %d: got %v, want %v", i, got, want)
		}
		if len(conflicts) != len(wantConflicts) {
			t.Fatalf("order %d: %d conflicts, want %d", i, len(conflicts), len(wantConflicts))
		}
		for j := range conflicts {
			if conflicts[j].message() != wantConflicts[j].message() {
				t.Fatalf("order %d: conflict %q, want %q", i, conflicts[j].message(), wantConflicts[j].message())
			}
		}
	}
}
