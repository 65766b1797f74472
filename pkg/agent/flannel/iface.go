package flannel

import (
	"fmt"
	"net"

	"github.com/flannel-io/flannel/pkg/backend"
	"github.com/vishvananda/netlink"
	"k8s.io/klog/v2"
)

// lookupExtIface finds the interface that carries traffic between nodes and the address other
// nodes reach this one at: the interface named name, or, when name is "", the one holding
// nodeIP. It asks netlink, which answers for the network namespace the process is in, where
// /sys/class/net may describe another namespace (a node in a namespace of a test machine).
func lookupExtIface(name string, nodeIP net.IP) (*backend.ExternalInterface, error) {
	family := netlink.FAMILY_V4
	if nodeIP.To4() == nil {
		family = netlink.FAMILY_V6
	}
	var link netlink.Link
	var addr net.IP
	if name != "" {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("flannel interface %s: %w", name, err)
		}
		addrs, err := netlink.AddrList(l, family)
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", name, err)
		}
		addr = pickAddr(addrs, nodeIP)
		if addr == nil {
			return nil, fmt.Errorf("flannel interface %s has no usable address of node IP %s's family", name, nodeIP)
		}
		if !addr.Equal(nodeIP) {
			// Other nodes reach this one over name's network, so they need name's address.
			klog.InfoS("Node IP is not on flannel's interface; using the interface's address", "iface", name, "nodeIP", nodeIP, "addr", addr)
		}
		link = l
	} else {
		// A nil link lists the addresses of every interface, each with its link's index.
		addrs, err := netlink.AddrList(nil, family)
		if err != nil {
			return nil, fmt.Errorf("listing addresses: %w", err)
		}
		for _, a := range addrs {
			if a.IP.Equal(nodeIP) {
				if link, err = netlink.LinkByIndex(a.LinkIndex); err != nil {
					return nil, fmt.Errorf("interface of %s: %w", nodeIP, err)
				}
				addr = nodeIP
				break
			}
		}
		if link == nil {
			return nil, fmt.Errorf("no interface holds the node IP %s", nodeIP)
		}
	}

	attrs := link.Attrs()
	if attrs.MTU <= 0 {
		return nil, fmt.Errorf("interface %s reports no MTU", attrs.Name)
	}
	ei := &backend.ExternalInterface{
		Iface: &net.Interface{
			Index: attrs.Index, MTU: attrs.MTU, Name: attrs.Name,
			HardwareAddr: attrs.HardwareAddr, Flags: attrs.Flags,
		},
		IfaceName: attrs.Name,
	}
	// host-gw requires the advertised address to be the interface's own.
	if family == netlink.FAMILY_V4 {
		ei.IfaceAddr, ei.ExtAddr = addr, addr
	} else {
		ei.IfaceV6Addr, ei.ExtV6Addr = addr, addr
	}
	return ei, nil
}

// pickAddr prefers want among addrs, else the first global unicast address.
func pickAddr(addrs []netlink.Addr, want net.IP) net.IP {
	var first net.IP
	for _, a := range addrs {
		if a.IP.Equal(want) {
			return want
		}
		if first == nil && a.IP.IsGlobalUnicast() {
			first = a.IP
		}
	}
	return first
}
