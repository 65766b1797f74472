package role

import (
	"context"
	"fmt"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// LeaseNamespace is where RunLeader's leases are, next to those of the cluster's own controllers.
const LeaseNamespace = metav1.NamespaceSystem

const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
	// leaseGrace is how long past its lease a leader may go without renewing before
	// LeaderHealth fails and the kubelet restarts it.
	leaseGrace = 20 * time.Second
)

// Lease names the Lease in kube-system that RunLeader competes for, and what watches it.
type Lease struct {
	Name string
	// Recorder, if set, records on the Lease which replica became the leader.
	Recorder record.EventRecorder
	// Health, if set, is the check that fails while this process leads without renewing.
	Health *LeaderHealth
}

// LeaderHealth is a /healthz check for a leader stuck in renewing its lease, which the
// elector would otherwise not notice: leading, it keeps acting on the lease after it expired.
type LeaderHealth struct {
	watchdog *leaderelection.HealthzAdaptor
}

// NewLeaderHealth is a check that passes until RunLeader, given it in a Lease, is leading.
func NewLeaderHealth() *LeaderHealth {
	return &LeaderHealth{leaderelection.NewLeaderHealthzAdaptor(leaseGrace)}
}

// Check fails while this process leads but has not renewed its lease for leaseGrace past it.
func (h *LeaderHealth) Check() error { return h.watchdog.Check(nil) }

// RunLeader waits for the lease and calls run while holding it; run should return once its
// ctx ends, which happens when ctx does or the lease is lost. RunLeader returns nil when ctx
// ends, run's error if it fails, and an error naming the lease when the lease is lost: the
// process then restarts and competes again with fresh caches, rather than reasoning about
// work that another replica may have taken over. The lease is released only once run has
// returned.
func RunLeader(ctx context.Context, client kubernetes.Interface, lease Lease, run func(ctx context.Context) error) error {
	name := LeaseNamespace + "/" + lease.Name
	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("naming this candidate for the lease %s: %w", name, err)
	}
	// The elector starts run's goroutine and does not wait for it; the channel hands its ctx
	// to this function, which runs the work itself.
	leading := make(chan context.Context, 1)
	config := leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta: metav1.ObjectMeta{Namespace: LeaseNamespace, Name: lease.Name},
			Client:    client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{
				Identity:      host + "_" + string(uuid.NewUUID()),
				EventRecorder: lease.Recorder,
			},
		},
		Name:            lease.Name,
		LeaseDuration:   leaseDuration,
		RenewDeadline:   renewDeadline,
		RetryPeriod:     retryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) { leading <- lctx },
			OnStoppedLeading: func() { klog.V(2).InfoS("Not leading", "lease", name) },
			OnNewLeader: func(identity string) {
				klog.V(2).InfoS("New leader", "lease", name, "identity", identity)
			},
		},
	}
	if lease.Health != nil {
		config.WatchDog = lease.Health.watchdog
	}
	le, err := leaderelection.NewLeaderElector(config)
	if err != nil {
		return fmt.Errorf("leader election on the lease %s: %w", name, err)
	}
	if lease.Health != nil {
		lease.Health.watchdog.SetLeaderElection(le)
	}

	// The election has a context of its own, ended only once run returned: ReleaseOnCancel
	// hands the lease over at once, which is safe only when nothing acts on it any more.
	electCtx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	elected := make(chan struct{})
	go func() {
		defer close(elected)
		le.Run(electCtx)
	}()
	defer func() {
		stopElection()
		<-elected
	}()

	select {
	case <-ctx.Done():
		return nil
	case <-elected: // the elector returns of itself only once it has lost the lease
	case lctx := <-leading:
		wctx, cancel := context.WithCancel(lctx)
		stop := context.AfterFunc(ctx, cancel)
		err := run(wctx)
		stop()
		cancel()
		switch {
		case err != nil:
			return err
		case ctx.Err() != nil:
			return nil
		}
	}
	return fmt.Errorf("lost the lease %s", name)
}
