package role

import (
	"context"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TestRunLeaderStops competes for a lease on an API server that is not there: RunLeader keeps
// trying without running the work, its health check passes, and it returns nil once ctx ends.
func TestRunLeaderStops(t *testing.T) {
	client, err := kubernetes.NewForConfig(&rest.Config{Host: "https://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	health := NewLeaderHealth()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- RunLeader(ctx, client, Lease{Name: "test", Health: health}, func(context.Context) error {
			t.Error("run called without the lease")
			return nil
		})
	}()
	select {
	case err := <-done:
		t.Fatalf("RunLeader returned %v before ctx ended", err)
	case <-time.After(retryPeriod + time.Second): // two tries at least
	}
	if err := health.Check(); err != nil {
		t.Errorf("health of a candidate without the lease: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunLeader returned %v, want nil once ctx ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunLeader did not return within 10 s of ctx ending")
	}
}

func TestRunLeaderEnded(t *testing.T) {
	client, err := kubernetes.NewForConfig(&rest.Config{Host: "https://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = RunLeader(ctx, client, Lease{Name: "test"}, func(context.Context) error {
		t.Error("run called with ctx ended")
		return nil
	})
	if err != nil {
		t.Errorf("RunLeader with ctx ended: %v, want nil", err)
	}
}
