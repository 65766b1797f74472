package control

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	componentbaseconfig "k8s.io/component-base/config"

	"github.com/ketch-k8s/ketch/internal/testutil/apiserver"
)

// TestLead: one of two servers leads; the other takes over at once when the first stops (its
// lease released), and a leader whose lease another takes stops with errLostLease rather than
// ending the process.
func TestLead(t *testing.T) {
	api := apiserver.Start(t)
	le := componentbaseconfig.LeaderElectionConfiguration{
		LeaderElect: true, ResourceLock: "leases", ResourceNamespace: "kube-system", ResourceName: "test-component",
		LeaseDuration: metav1.Duration{Duration: 4 * time.Second}, RenewDeadline: metav1.Duration{Duration: 2 * time.Second},
		RetryPeriod: metav1.Duration{Duration: 200 * time.Millisecond},
	}
	type server struct {
		cancel  context.CancelFunc
		leading chan struct{}
		done    chan error
	}
	start := func() *server {
		ctx, cancel := context.WithCancel(context.Background())
		s := &server{cancel: cancel, leading: make(chan struct{}), done: make(chan error, 1)}
		go func() {
			s.done <- lead(ctx, "test-component", le, api.Config, nil, func(ctx context.Context) error {
				close(s.leading)
				<-ctx.Done()
				return ctx.Err()
			})
		}()
		return s
	}
	first := start()
	select {
	case <-first.leading:
	case <-time.After(30 * time.Second):
		t.Fatal("the first server never led")
	}
	second := start()
	select {
	case <-second.leading:
		t.Fatal("two servers lead at once")
	case <-time.After(2 * time.Second):
	}
	stopped := time.Now()
	first.cancel()
	if err := <-first.done; err != nil {
		t.Errorf("a stopped leader: %v, want nil", err)
	}
	select {
	case <-second.leading:
		t.Logf("the second server led %s after the first stopped", time.Since(stopped).Round(10*time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("the second server did not take over within 10s of the first stopping (lease not released?)")
	}

	// Another holder takes the lease: the leader notices at its next renewal.
	leases := api.Client.CoordinationV1().Leases("kube-system")
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		lease, err := leases.Get(context.Background(), "test-component", metav1.GetOptions{})
		if err != nil {
			return err
		}
		other := "someone-else"
		lease.Spec.HolderIdentity = &other
		_, err = leases.Update(context.Background(), lease, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-second.done:
		if !errors.Is(err, errLostLease) || !strings.Contains(err.Error(), "test-component lost its leader lease") {
			t.Errorf("a leader that lost its lease: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the leader did not notice it lost its lease")
	}
	second.cancel()
}
