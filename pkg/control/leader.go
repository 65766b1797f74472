package control

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"k8s.io/apimachinery/pkg/util/uuid"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	componentbaseconfig "k8s.io/component-base/config"
	"k8s.io/klog/v2"
)

// Upstream kube-controller-manager and kube-scheduler elect their leader themselves, and exit
// the process when they stop leading: on a lost lease, and (the scheduler) even when told to
// stop. In ketch that process is the whole server, its node included, so ketch holds the lease
// itself and runs the component, without its own election, only while it leads:
//   - a stop releases the lease (the next server takes over at once) and stops the component
//     in the node's staged stop, like any other;
//   - a lost lease stops the component, and with it the node, in order, with an error that
//     says so; the init system then starts the server again, which stands for election anew.
//     (Running an upstream component a second time in one process is not possible: it
//     registers process-wide metrics and config pages.)

// errLostLease is a component that stopped leading while the server was not stopping.
var errLostLease = errors.New("lost its leader lease: the datastore did not confirm the renewal in time (overloaded, or lost its quorum); stopping the server so that its init system starts it again")

// lead runs component whenever this server holds the lease le names, until ctx ends or the
// lease is lost. The lease's holder identity is the host name and a unique suffix, as upstream.
func lead(ctx context.Context, name string, le componentbaseconfig.LeaderElectionConfiguration, kubeconfig *restclient.Config, recorder record.EventRecorder, component func(context.Context) error) error {
	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("%s: the host name for its leader identity: %w", name, err)
	}
	lock, err := resourcelock.NewFromKubeconfig(le.ResourceLock, le.ResourceNamespace, le.ResourceName,
		resourcelock.ResourceLockConfig{Identity: host + "_" + string(uuid.NewUUID()), EventRecorder: recorder},
		kubeconfig, le.RenewDeadline.Duration)
	if err != nil {
		return fmt.Errorf("%s: its leader lease: %w", name, err)
	}
	// mu keeps the component's run and this function's return apart: client-go starts
	// OnStartedLeading in a goroutine of its own and does not wait for it.
	var (
		mu     sync.Mutex
		runErr error
		led    bool
	)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, Name: name, ReleaseOnCancel: true,
		LeaseDuration: le.LeaseDuration.Duration, RenewDeadline: le.RenewDeadline.Duration, RetryPeriod: le.RetryPeriod.Duration,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				mu.Lock()
				defer mu.Unlock()
				if lctx.Err() != nil {
					return
				}
				led = true
				klog.InfoS("Leading; starting", "component", name)
				runErr = component(lctx)
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return fmt.Errorf("%s: its leader election: %w", name, err)
	}
	elector.Run(ctx)
	mu.Lock()
	defer mu.Unlock()
	switch {
	case ctx.Err() != nil:
		return nil
	case !led:
		return fmt.Errorf("%s: leader election ended without leading", name)
	case runErr != nil && !errors.Is(runErr, context.Canceled):
		return fmt.Errorf("%s: %w", name, runErr)
	}
	return fmt.Errorf("%s %w", name, errLostLease)
}
