package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ketch-k8s/ketch/pkg/console"
	"github.com/ketch-k8s/ketch/pkg/hostcheck"
)

// syncBuffer is the console's output, read while the frame writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// events records what the stages' components and stop hooks did, in order.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, s)
}

func (e *events) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}

// frame runs start in a frame whose process context the test cancels with stop.
func frame(t *testing.T, start func(context.Context, *Node) error) (run func() error, stop context.CancelFunc, out *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	out = &syncBuffer{}
	n := newNode(ctx, &hostcheck.Host{}, console.New(out, time.Now()), takeNotifySocket())
	return func() error { return n.run(start) }, cancel, out
}

// goRun runs run in a goroutine and delivers its result.
func goRun(run func() error) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- run() }()
	return errc
}

// shorten makes the frame's timings fit a unit test.
func shorten(t *testing.T) {
	saved := []time.Duration{stopTimeout, startupStopGrace, stillWaitingAfter, signalRace, stageGrace}
	stopTimeout, startupStopGrace, stillWaitingAfter, signalRace, stageGrace = 2*time.Second, 300*time.Millisecond, 300*time.Millisecond, 50*time.Millisecond, 200*time.Millisecond
	t.Cleanup(func() {
		stopTimeout, startupStopGrace, stillWaitingAfter, signalRace, stageGrace = saved[0], saved[1], saved[2], saved[3], saved[4]
	})
}

// testComponent runs until its stage stops, then takes linger to stop, recording both.
func testComponent(n *Node, s *Stage, ev *events, name string, linger time.Duration) {
	n.Go(s, name, func(ctx context.Context) error {
		<-ctx.Done()
		ev.add(name + " stopping")
		time.Sleep(linger)
		ev.add(name + " stopped")
		return nil
	})
}

// TestStagedStop: stages stop last first, each only once the later ones' components are down,
// and a stage's stop hooks run after its components. A stop during start-up is a clean stop
// that says what start-up was waiting for.
func TestStagedStop(t *testing.T) {
	shorten(t)
	ev := &events{}
	started := make(chan struct{})
	run, stop, out := frame(t, func(ctx context.Context, n *Node) error {
		datastore := n.Stage("datastore")
		testComponent(n, datastore, ev, "datastore", 0)
		datastore.OnStop(func() { ev.add("datastore hook") })
		api := n.Stage("kube-apiserver")
		testComponent(n, api, ev, "kube-apiserver", 100*time.Millisecond)
		node := n.Stage("node")
		testComponent(n, node, ev, "kubelet", 200*time.Millisecond)
		testComponent(n, node, ev, "kube-proxy", 0)
		node.OnStop(func() { ev.add("node hook") })
		n.Waiting("the test to stop the node")
		close(started)
		<-ctx.Done()
		return context.Cause(ctx)
	})
	errc := goRun(run)
	<-started
	stop()
	if err := <-errc; err != nil {
		t.Fatalf("a stop during start-up returned %v, want nil", err)
	}
	got := ev.get()
	// The node's two components stop together; everything else is in order.
	nodeStops := got[:4]
	slices.Sort(nodeStops)
	want := []string{"kube-proxy stopped", "kube-proxy stopping", "kubelet stopped", "kubelet stopping"}
	if !slices.Equal(nodeStops, want) {
		t.Errorf("the node stage: %q, want %q", nodeStops, want)
	}
	want = []string{"node hook", "kube-apiserver stopping", "kube-apiserver stopped", "datastore stopping", "datastore stopped", "datastore hook"}
	if !slices.Equal(got[4:], want) {
		t.Errorf("after the node stage: %q, want %q", got[4:], want)
	}
	if msg := "ketch: stopping before the node started (it was waiting for the test to stop the node)"; !strings.Contains(out.String(), msg) {
		t.Errorf("console lacks %q:\n%s", msg, out)
	}
}

// TestComponentFailure: a component that fails, or stops on its own, stops the node with an
// error naming it, whether the node is still starting or not.
func TestComponentFailure(t *testing.T) {
	shorten(t)
	for _, tc := range []struct {
		name string
		run  func(ctx context.Context) error
		want string
	}{
		{"fails", func(ctx context.Context) error { return errors.New("exploded") }, "kube-scheduler: exploded"},
		{"stops without an error", func(ctx context.Context) error { return nil }, "kube-scheduler stopped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := &events{}
			run, _, _ := frame(t, func(ctx context.Context, n *Node) error {
				api := n.Stage("kube-apiserver")
				testComponent(n, api, ev, "kube-apiserver", 0)
				controllers := n.Stage("controllers")
				n.Go(controllers, "kube-scheduler", func(context.Context) error {
					time.Sleep(100 * time.Millisecond)
					return tc.run(ctx)
				})
				n.Waiting("kube-apiserver to be ready")
				<-ctx.Done()
				return context.Cause(ctx)
			})
			err := run()
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if got, want := ev.get(), []string{"kube-apiserver stopping", "kube-apiserver stopped"}; !slices.Equal(got, want) {
				t.Errorf("the other stages: %q, want %q", got, want)
			}
		})
	}
}

// TestStartError: a start-up step that fails stops what already runs and returns the step's error.
func TestStartError(t *testing.T) {
	shorten(t)
	ev := &events{}
	run, _, _ := frame(t, func(ctx context.Context, n *Node) error {
		testComponent(n, n.Stage("datastore"), ev, "datastore", 0)
		return errors.New("certificates: the CA is damaged")
	})
	if err := run(); err == nil || err.Error() != "certificates: the CA is damaged" {
		t.Fatalf("got %v", err)
	}
	if got, want := ev.get(), []string{"datastore stopping", "datastore stopped"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestStartupIgnoringTheStop: a start-up step that does not notice the stop is left behind after
// a grace period; the stages stop anyway and the console says which step it was.
func TestStartupIgnoringTheStop(t *testing.T) {
	shorten(t)
	ev := &events{}
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	run, stop, out := frame(t, func(ctx context.Context, n *Node) error {
		testComponent(n, n.Stage("containerd"), ev, "containerd", 0)
		n.Waiting("a call that ignores its context")
		close(started)
		<-release
		return nil
	})
	errc := goRun(run)
	<-started
	begin := time.Now()
	stop()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("got %v, want a clean stop", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the frame waited for a start-up step that ignores its context")
	}
	if took := time.Since(begin); took < startupStopGrace {
		t.Errorf("stopped after %s, before the grace period %s", took, startupStopGrace)
	}
	for _, msg := range []string{
		"ketch: start-up did not stop within 300ms while waiting for a call that ignores its context; stopping without it",
		"ketch: stopping before the node started (it was waiting for a call that ignores its context)",
	} {
		if !strings.Contains(out.String(), msg) {
			t.Errorf("console lacks %q:\n%s", msg, out)
		}
	}
	if got, want := ev.get(), []string{"containerd stopping", "containerd stopped"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestStopDeadline: a component that does not stop holds the stop only until the deadline; the
// earlier stages still get their grace to stop.
func TestStopDeadline(t *testing.T) {
	shorten(t)
	stopTimeout = 300 * time.Millisecond
	ev := &events{}
	started := make(chan struct{})
	run, stop, _ := frame(t, func(ctx context.Context, n *Node) error {
		testComponent(n, n.Stage("datastore"), ev, "datastore", 0)
		n.Go(n.Stage("node"), "kubelet", func(context.Context) error { select {} })
		close(started)
		<-ctx.Done()
		return nil
	})
	errc := goRun(run)
	<-started
	stop()
	select {
	case <-errc:
	case <-time.After(5 * time.Second):
		t.Fatal("a component that never stops held the frame past its deadline")
	}
	if got, want := ev.get(), []string{"datastore stopping", "datastore stopped"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestStillWaiting: a slow start-up step is named on the console while it lasts.
func TestStillWaiting(t *testing.T) {
	shorten(t)
	started := make(chan struct{})
	run, stop, out := frame(t, func(ctx context.Context, n *Node) error {
		n.Waiting("the server at https://192.0.2.1:6443")
		close(started)
		<-ctx.Done()
		return nil
	})
	errc := goRun(run)
	<-started
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "ketch: still waiting for the server at https://192.0.2.1:6443 (") {
		if time.Now().After(deadline) {
			t.Fatalf("no still-waiting line:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	<-errc
}

// TestNoNode: a role whose start-up starts no node is a programming error, reported as such.
func TestNoNode(t *testing.T) {
	shorten(t)
	run, _, _ := frame(t, func(ctx context.Context, n *Node) error { return nil })
	if err := run(); err == nil || !strings.Contains(err.Error(), "no WatchNode") {
		t.Fatalf("got %v", err)
	}
}
