package lifecycle

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ketch-k8s/ketch/internal/testutil/apiserver"
)

// TestWaitsForTheNode runs the frame against a real kube-apiserver: start-up is over only once
// the Node has registered (then the registration hooks run) and is Ready by a heartbeat of this
// run, not by the Ready condition a previous run left.
func TestWaitsForTheNode(t *testing.T) {
	shorten(t)
	api := apiserver.Start(t)
	ctx := context.Background()
	nodes := api.Client.CoreV1().Nodes()
	// A Ready Node left by a previous run.
	old := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	node, err := nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: old, LastTransitionTime: old}}
	if _, err := nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	sd := listenNotify(t)
	ev := &events{}
	run, stop, out := frame(t, func(ctx context.Context, n *Node) error {
		n.WatchNode(ctx, api.Client, "node-1")
		n.OnRegistered(func(context.Context) error { ev.add("registered hook"); return nil })
		n.OnReady(func() { ev.add("ready hook") })
		return nil
	})
	errc := goRun(run)

	// The old Ready condition does not count.
	waitFor(t, out, "ketch: node registered")
	time.Sleep(500 * time.Millisecond)
	if strings.Contains(out.String(), "node Ready") {
		t.Fatalf("Ready by the previous run's heartbeat:\n%s", out)
	}
	if got := ev.get(); len(got) != 1 || got[0] != "registered hook" {
		t.Fatalf("hooks before Ready: %q", got)
	}
	if os.Getenv("NOTIFY_SOCKET") != "" {
		t.Error("NOTIFY_SOCKET is still in the environment, where the kubelet would find it")
	}
	if got := sd.messages(); slices.Contains(got, "READY=1") {
		t.Fatalf("systemd was told READY before the node was Ready: %q", got)
	}
	// This run's kubelet reports NotReady first: the still-waiting line says why, in its words.
	node, err = nodes.Get(ctx, "node-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.NewTime(time.Now())
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, LastHeartbeatTime: now, LastTransitionTime: now,
		Reason: "KubeletNotReady", Message: "container runtime network not ready: cni plugin not initialized"}}
	if node, err = nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "s): KubeletNotReady: container runtime network not ready: cni plugin not initialized\n")
	// Then Ready.
	now = metav1.NewTime(time.Now())
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: now, LastTransitionTime: now}}
	if _, err := nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "ketch: node Ready")
	waitForEvents(t, ev, 2)
	stop()
	if err := <-errc; err != nil {
		t.Fatalf("stop after start-up: %v", err)
	}
	if got := ev.get(); got[1] != "ready hook" {
		t.Errorf("hooks: %q", got)
	}
	if !strings.Contains(out.String(), "ketch: stopping\n") {
		t.Errorf("no stopping line:\n%s", out)
	}
	// What systemctl status shows while starting, then READY once Ready, then STOPPING.
	want := []string{"STATUS=waiting for node node-1 to register", "STATUS=node registered",
		"STATUS=waiting for node node-1 to be Ready", "READY=1", "STATUS=node node-1 Ready", "STOPPING=1"}
	deadline := time.Now().Add(5 * time.Second) // the datagrams are read in the background
	for !isSubsequence(want, sd.messages()) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := sd.messages(); !isSubsequence(want, got) {
		t.Errorf("service manager messages\n%q\nwant in this order\n%q", got, want)
	}
}

// notifySocket is a service manager's notification socket, as systemd listens on it for a
// Type=notify service.
type notifySocket struct {
	mu   sync.Mutex
	msgs []string
}

func (s *notifySocket) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// listenNotify listens on a notification socket and points NOTIFY_SOCKET at it.
func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	s := &notifySocket{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, strings.Split(string(buf[:n]), "\n")...)
			s.mu.Unlock()
		}
	}()
	return s
}

// isSubsequence says whether want appears in got in order, other elements between.
func isSubsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

func waitFor(t *testing.T, out *syncBuffer, line string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), line) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q:\n%s", line, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitForEvents(t *testing.T, ev *events, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(ev.get()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("events %q, want %d", ev.get(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
