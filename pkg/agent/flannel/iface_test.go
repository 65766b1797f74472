package flannel

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/flannel-io/flannel/pkg/backend"
	"github.com/vishvananda/netns"
)

// inNetns runs f on a thread moved into the network namespace name. The thread is never
// handed back to the Go scheduler: its goroutine ends locked, so the runtime discards it.
func inNetns(t *testing.T, name string, f func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.GetFromName(name)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		defer func() { errc <- nil }()
		f()
	}()
	if err := <-errc; err != nil {
		t.Fatalf("entering netns %s: %v", name, err)
	}
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestLookupExtIface builds interfaces in a namespace of its own, so that the host's are
// neither seen nor touched.
func TestLookupExtIface(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace; not with -short")
	}
	ns := fmt.Sprintf("ketch-flannel-test-%d", os.Getpid())
	ipCmd(t, "netns", "add", ns)
	// Deleting the namespace deletes its links. They are veths: this kernel may lack dummy.
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", ns, err, out)
		}
	})
	ipCmd(t, "-n", ns, "link", "add", "ext0", "mtu", "1400", "type", "veth", "peer", "name", "ext0p")
	ipCmd(t, "-n", ns, "addr", "add", "192.0.2.10/24", "dev", "ext0")
	ipCmd(t, "-n", ns, "addr", "add", "198.51.100.7/24", "dev", "ext0")
	ipCmd(t, "-n", ns, "addr", "add", "2001:db8::10/64", "dev", "ext0", "nodad")
	ipCmd(t, "-n", ns, "link", "set", "ext0", "up")
	ipCmd(t, "-n", ns, "link", "add", "priv0", "type", "veth", "peer", "name", "priv0p")
	ipCmd(t, "-n", ns, "addr", "add", "203.0.113.5/24", "dev", "priv0")
	ipCmd(t, "-n", ns, "link", "set", "priv0", "up")

	for _, tc := range []struct {
		name, iface, nodeIP string
		wantIface, wantAddr string
		wantMTU             int
		wantErr             bool
	}{
		{name: "by node IP", nodeIP: "198.51.100.7", wantIface: "ext0", wantAddr: "198.51.100.7", wantMTU: 1400},
		{name: "by node IP, first address", nodeIP: "192.0.2.10", wantIface: "ext0", wantAddr: "192.0.2.10", wantMTU: 1400},
		{name: "by name holding node IP", iface: "ext0", nodeIP: "198.51.100.7", wantIface: "ext0", wantAddr: "198.51.100.7", wantMTU: 1400},
		{name: "by name without node IP", iface: "priv0", nodeIP: "198.51.100.7", wantIface: "priv0", wantAddr: "203.0.113.5", wantMTU: 1500},
		{name: "IPv6 by node IP", nodeIP: "2001:db8::10", wantIface: "ext0", wantAddr: "2001:db8::10", wantMTU: 1400},
		{name: "node IP nowhere", nodeIP: "10.99.99.99", wantErr: true},
		{name: "no such interface", iface: "nope0", nodeIP: "192.0.2.10", wantErr: true},
		{name: "interface without the family", iface: "priv0", nodeIP: "2001:db8::10", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ei *backend.ExternalInterface
			var err error
			inNetns(t, ns, func() { ei, err = lookupExtIface(tc.iface, net.ParseIP(tc.nodeIP)) })
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %s, want an error", ei.IfaceName)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ei.IfaceName != tc.wantIface || ei.Iface.Name != tc.wantIface || ei.Iface.MTU != tc.wantMTU || ei.Iface.Index == 0 {
				t.Errorf("interface %s (%+v), want %s with MTU %d", ei.IfaceName, ei.Iface, tc.wantIface, tc.wantMTU)
			}
			want := net.ParseIP(tc.wantAddr)
			addr, ext := ei.IfaceAddr, ei.ExtAddr
			if want.To4() == nil {
				addr, ext = ei.IfaceV6Addr, ei.ExtV6Addr
				if ei.IfaceAddr != nil || ei.ExtAddr != nil {
					t.Errorf("IPv4 addresses set for an IPv6 node: %v %v", ei.IfaceAddr, ei.ExtAddr)
				}
			}
			if !addr.Equal(want) || !ext.Equal(want) {
				t.Errorf("addresses %v/%v, want %v", addr, ext, want)
			}
		})
	}
}
