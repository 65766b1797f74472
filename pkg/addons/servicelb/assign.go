package servicelb

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

const (
	// loadBalancerClass is the spec.loadBalancerClass this controller answers to, besides none.
	loadBalancerClass = "ketch.io/servicelb"

	// labelEnableLB on a Node: "true" on any node limits serving to the nodes labelled "true";
	// "false" keeps a node out in every case.
	labelEnableLB = "svccontroller.ketch.io/enablelb"
	// labelLBPool on a Node names its pool; on a Service (label, else annotation) it limits the
	// Service to the nodes of that pool.
	labelLBPool = "svccontroller.ketch.io/lbpool"
)

// nodeOwnPorts are the ports ketch itself uses on a node. kube-proxy's DNAT for a load-balancer
// IP runs in PREROUTING and OUTPUT, before the node's own sockets, so a Service on one of them
// would take that traffic away from ketch (for the vxlan port: the pod network between nodes).
// 6444 and 10256 listen on loopback by default, out of the DNAT's reach, but are reserved all the
// same so that the verdict does not depend on how a node was started. kube-apiserver is only on
// servers and may have moved (--https-listen-port); the default is reserved on every node.
var nodeOwnPorts = map[portKey]string{
	{6443, v1.ProtocolTCP}:  "kube-apiserver",
	{6444, v1.ProtocolTCP}:  "the agent's kube-apiserver load balancer",
	{10250, v1.ProtocolTCP}: "the kubelet",
	{10256, v1.ProtocolTCP}: "kube-proxy's health checks",
	{8472, v1.ProtocolUDP}:  "flannel's vxlan overlay",
}

type portKey struct {
	port     int32
	protocol v1.Protocol
}

func (p portKey) String() string { return fmt.Sprintf("%d/%s", p.port, p.protocol) }

// endpoint is one address:port/protocol that kube-proxy captures for a Service.
type endpoint struct {
	ip netip.Addr
	portKey
}

// conflict is why a Service is not served: one of its ports is already taken on some of its node
// IPs, by an older Service (holder) or by ketch on the node itself (nodeUse).
type conflict struct {
	service *v1.Service
	port    portKey
	ips     []netip.Addr
	holder  types.NamespacedName
	nodeUse string
}

func (c conflict) message() string {
	ips := joinAddrs(c.ips)
	if c.nodeUse != "" {
		return fmt.Sprintf("port %s on %s is used by the node itself (%s); change the port", c.port, ips, c.nodeUse)
	}
	return fmt.Sprintf("port %s on %s is already served by LoadBalancer Service %s; change the port or delete that Service", c.port, ips, c.holder)
}

// assign decides the status.loadBalancer.ingress of every Service this controller handles: the
// IPs of its eligible nodes, or none when one of its ports clashes. The result has an entry for
// every handled Service (nil when not served) and none for the others. Older Services win a
// clash, so a Service keeps its addresses until it changes or is deleted, whatever is created
// after it.
func assign(services []*v1.Service, nodes []*v1.Node) (map[types.NamespacedName][]v1.LoadBalancerIngress, []conflict) {
	serving := servingNodes(nodes)
	var handled []*v1.Service
	for _, s := range services {
		if handles(s) {
			handled = append(handled, s)
		}
	}
	slices.SortFunc(handled, olderFirst)

	out := make(map[types.NamespacedName][]v1.LoadBalancerIngress, len(handled))
	var conflicts []conflict
	claimed := map[endpoint]types.NamespacedName{}
	for _, s := range handled {
		name := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
		ips := serviceIPs(s, serving)
		if c, clash := findConflict(s, ips, claimed); clash {
			c.service = s
			conflicts = append(conflicts, c)
			out[name] = nil
			continue
		}
		for _, p := range s.Spec.Ports {
			for _, ip := range ips {
				claimed[endpoint{ip, servicePort(p)}] = name
			}
		}
		out[name] = ingress(ips)
	}
	return out, conflicts
}

// handles reports whether s is a LoadBalancer Service for this controller. Services leaving that
// state need no clean-up here: the API server clears status.loadBalancer when spec.type changes
// away from LoadBalancer, and spec.loadBalancerClass cannot change while it stays one.
func handles(s *v1.Service) bool {
	return s.Spec.Type == v1.ServiceTypeLoadBalancer &&
		(s.Spec.LoadBalancerClass == nil || *s.Spec.LoadBalancerClass == loadBalancerClass)
}

func olderFirst(a, b *v1.Service) int {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// servingNodes is the nodes that may serve: Ready ones (a cordoned node still runs kube-proxy, so
// it serves; a NotReady one may not), limited to those labelled enablelb=true if any node, ready
// or not, has that label, and never those labelled enablelb=false.
func servingNodes(nodes []*v1.Node) []*v1.Node {
	optIn := slices.ContainsFunc(nodes, func(n *v1.Node) bool { return n.Labels[labelEnableLB] == "true" })
	var out []*v1.Node
	for _, n := range nodes {
		switch {
		case !ready(n), n.Labels[labelEnableLB] == "false":
		case optIn && n.Labels[labelEnableLB] != "true":
		default:
			out = append(out, n)
		}
	}
	return out
}

func ready(n *v1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// serviceIPs is the node IPs s is served on, sorted and unique: the ExternalIP and InternalIP
// addresses of the serving nodes in its pool, of the IP families it has. kube-proxy ignores an
// ingress IP of a family the Service has no cluster IP for.
func serviceIPs(s *v1.Service, serving []*v1.Node) []netip.Addr {
	pool, hasPool := s.Labels[labelLBPool]
	if !hasPool {
		pool, hasPool = s.Annotations[labelLBPool]
	}
	v4, v6 := families(s)
	var ips []netip.Addr
	for _, n := range serving {
		if hasPool && n.Labels[labelLBPool] != pool {
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type != v1.NodeExternalIP && a.Type != v1.NodeInternalIP {
				continue
			}
			ip, err := netip.ParseAddr(a.Address)
			if err != nil {
				continue
			}
			ip = ip.Unmap()
			if ip.Is4() && v4 || ip.Is6() && v6 {
				ips = append(ips, ip)
			}
		}
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	return slices.Compact(ips)
}

// families is the IP families of s: spec.ipFamilies, which the API server always fills in for a
// Service with a cluster IP, else those of its cluster IPs.
func families(s *v1.Service) (v4, v6 bool) {
	for _, f := range s.Spec.IPFamilies {
		v4 = v4 || f == v1.IPv4Protocol
		v6 = v6 || f == v1.IPv6Protocol
	}
	if len(s.Spec.IPFamilies) > 0 {
		return v4, v6
	}
	for _, c := range append([]string{s.Spec.ClusterIP}, s.Spec.ClusterIPs...) {
		if ip, err := netip.ParseAddr(c); err == nil {
			v4 = v4 || ip.Unmap().Is4()
			v6 = v6 || ip.Unmap().Is6()
		}
	}
	return v4, v6
}

func servicePort(p v1.ServicePort) portKey {
	return portKey{p.Port, cmp.Or(p.Protocol, v1.ProtocolTCP)}
}

// findConflict returns the first port of s (in spec order) that is taken on any of ips: by the
// node itself, or by an older Service, with every IP where that same Service holds it.
func findConflict(s *v1.Service, ips []netip.Addr, claimed map[endpoint]types.NamespacedName) (conflict, bool) {
	if len(ips) == 0 {
		return conflict{}, false
	}
	for _, p := range s.Spec.Ports {
		port := servicePort(p)
		if use, taken := nodeOwnPorts[port]; taken {
			return conflict{port: port, ips: ips, nodeUse: use}, true
		}
		var c conflict
		for _, ip := range ips {
			holder, taken := claimed[endpoint{ip, port}]
			if !taken || len(c.ips) > 0 && holder != c.holder {
				continue
			}
			c.port, c.holder = port, holder
			c.ips = append(c.ips, ip)
		}
		if len(c.ips) > 0 {
			return c, true
		}
	}
	return conflict{}, false
}

func ingress(ips []netip.Addr) []v1.LoadBalancerIngress {
	if len(ips) == 0 {
		return nil
	}
	out := make([]v1.LoadBalancerIngress, len(ips))
	for i, ip := range ips {
		// VIP: kube-proxy captures the address itself (ipMode Proxy would leave it to the load
		// balancer, and nothing else forwards here).
		out[i] = v1.LoadBalancerIngress{IP: ip.String(), IPMode: ptr.To(v1.LoadBalancerIPModeVIP)}
	}
	return out
}

func joinAddrs(ips []netip.Addr) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ", ")
}
