package servicelb

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

func TestNodeChanged(t *testing.T) {
	base := func() *v1.Node { return labelled(node("a", "10.0.0.1"), labelLBPool, "p") }
	tests := []struct {
		name   string
		change func(*v1.Node)
		want   bool
	}{
		{"heartbeat", func(n *v1.Node) {
			n.Status.Conditions[0].LastHeartbeatTime = metav1.Now()
			n.ResourceVersion = "2"
		}, false},
		{"unrelated label", func(n *v1.Node) { n.Labels["team"] = "x" }, false},
		{"enablelb", func(n *v1.Node) { n.Labels[labelEnableLB] = "true" }, true},
		{"pool", func(n *v1.Node) { delete(n.Labels, labelLBPool) }, true},
		{"not ready", func(n *v1.Node) { notReady(n) }, true},
		{"address", func(n *v1.Node) { n.Status.Addresses[0].Address = "10.0.0.2" }, true},
		{"external IP added", func(n *v1.Node) {
			n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: v1.NodeExternalIP, Address: "203.0.113.1"})
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := base()
			tt.change(n)
			if got := nodeChanged(base(), n); got != tt.want {
				t.Errorf("nodeChanged = %v, want %v", got, tt.want)
			}
		})
	}
	if !nodeChanged(cache.DeletedFinalStateUnknown{}, base()) {
		t.Error("an object that is not a Node must count as a change")
	}
}

func TestTrim(t *testing.T) {
	n := node("a", "10.0.0.1")
	n.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
	n.Status.Images = []v1.ContainerImage{{Names: []string{"busybox"}}}
	if _, err := trim(n); err != nil {
		t.Fatal(err)
	}
	if n.ManagedFields != nil || n.Status.Images != nil || len(n.Status.Addresses) != 1 || !ready(n) {
		t.Errorf("trimmed node %+v: want no managed fields or images, the rest kept", n)
	}
	s := svc("default/web", 0, "80")
	s.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	if _, err := trim(s); err != nil || s.ManagedFields != nil || len(s.Spec.Ports) != 1 {
		t.Errorf("trimmed service %+v, %v", s, err)
	}
	if _, err := trim(cache.DeletedFinalStateUnknown{Key: "x"}); err != nil {
		t.Errorf("tombstone: %v", err)
	}
}

func TestCheck(t *testing.T) {
	synced := true
	c := &controller{synced: []cache.InformerSynced{func() bool { return true }, func() bool { return synced }}}
	if err := c.check(); err != nil {
		t.Errorf("synced and idle: %v", err)
	}
	c.busySince.Store(time.Now().Add(-syncTimeout).UnixNano())
	if err := c.check(); err != nil {
		t.Errorf("a pass within its time: %v", err)
	}
	c.busySince.Store(time.Now().Add(-3 * syncTimeout).UnixNano())
	if err := c.check(); err == nil || !strings.Contains(err.Error(), "stuck") {
		t.Errorf("a stuck pass: %v, want an error saying it is stuck", err)
	}
	c.busySince.Store(0)
	synced = false
	if err := c.check(); err == nil || !strings.Contains(err.Error(), "not synced") {
		t.Errorf("caches not synced: %v, want an error saying so", err)
	}
}

func TestReportOnChange(t *testing.T) {
	web, other := svc("default/web", 0, "80"), svc("default/other", 0, "80")
	clash := func(s, holder *v1.Service, port int32) conflict {
		return conflict{service: s, port: portKey{port, v1.ProtocolTCP}, ips: []netip.Addr{netip.MustParseAddr("10.0.0.1")},
			holder: types.NamespacedName{Namespace: holder.Namespace, Name: holder.Name}}
	}
	rec := record.NewFakeRecorder(10)
	c := &controller{recorder: rec}
	events := func() []string {
		var out []string
		for len(rec.Events) > 0 {
			out = append(out, <-rec.Events)
		}
		return out
	}
	const prefix = "Warning PortConflict "

	c.report([]conflict{clash(web, other, 80)})
	if got := events(); len(got) != 1 || got[0] != prefix+clash(web, other, 80).message() {
		t.Fatalf("first report: events %q", got)
	}
	c.report([]conflict{clash(web, other, 80)})
	if got := events(); len(got) != 0 {
		t.Fatalf("same clash again: events %q, want none", got)
	}
	c.report([]conflict{clash(web, other, 81)})
	if got := events(); len(got) != 1 || got[0] != prefix+clash(web, other, 81).message() {
		t.Fatalf("changed clash: events %q", got)
	}
	c.report(nil)
	if got := events(); len(got) != 0 || len(c.reported) != 0 {
		t.Fatalf("clash gone: events %q, remembered %v", got, c.reported)
	}
	c.report([]conflict{clash(web, other, 81)})
	if got := events(); !slices.Equal(got, []string{prefix + clash(web, other, 81).message()}) {
		t.Fatalf("clash back: events %q", got)
	}
}
