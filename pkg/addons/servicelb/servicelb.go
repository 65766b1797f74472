// Package servicelb is the service load balancer role of the addon image: it gives every
// LoadBalancer Service the IPs of the cluster's nodes as its external addresses, like k3s's
// ServiceLB, without running a pod per Service. kube-proxy (iptables mode) already installs, on
// every node, a DNAT rule for each status.loadBalancer.ingress IP of ipMode VIP at the Service's
// port, so writing node IPs there is all it takes to serve the Service on those IPs.
//
// The controller decides which node IPs each Service gets (Ready nodes, narrowed by the
// svccontroller.ketch.io/enablelb and svccontroller.ketch.io/lbpool labels), writes them, and
// reports clashes: two Services on the same node IP, port and protocol would fight over the same
// DNAT rule, so the older one keeps the port and the newer one is not served until the clash goes.
package servicelb

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

const (
	component      = "ketch-servicelb"
	leaseNamespace = metav1.NamespaceSystem
	leaseName      = "ketch-servicelb"
	// defaultHealthAddr is where the manifest's probes look.
	defaultHealthAddr = ":8080"
)

// Main runs the servicelb controller role with its command-line args (not including the role name) until ctx ends.
func Main(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("servicelb", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig to use instead of the pod's service account, to run outside the cluster")
	healthAddr := fs.String("health-addr", defaultHealthAddr, "address to serve GET /healthz on, for the pod's probes")
	klog.InitFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	cfg, err := restConfig(*kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}

	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	broadcaster := record.NewBroadcaster()
	defer broadcaster.Shutdown()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: component})

	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := newController(client, factory, recorder)
	if err != nil {
		return err
	}

	// Listen before anything else starts, so that a taken port fails the start at once.
	l, err := net.Listen("tcp", *healthAddr)
	if err != nil {
		return fmt.Errorf("health checks: %w", err)
	}
	srv := &http.Server{Handler: healthHandler(c), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			cancel(fmt.Errorf("serving health checks on %s: %w", *healthAddr, err))
		}
	}()
	defer func() {
		srv.Close()
		<-served
	}()

	factory.Start(ctx.Done())
	defer func() {
		cancel(nil) // the informers stop with ctx; Shutdown waits for them
		factory.Shutdown()
	}()
	klog.InfoS("Service load balancer starting", "lease", leaseNamespace+"/"+leaseName)
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return stopped(parent, ctx)
	}
	if err := lead(ctx, client, c); err != nil {
		return err
	}
	return stopped(parent, ctx)
}

// stopped is Main's result once ctx ended: nil if the caller ended it, else why Main did.
func stopped(parent, ctx context.Context) error {
	if parent.Err() != nil {
		return nil
	}
	return context.Cause(ctx)
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	cfg.UserAgent = component
	// A node address change rewrites every Service's status and records an Event for each;
	// client-go's default of 5 requests a second would leave some Services on the old
	// addresses for many seconds.
	cfg.QPS, cfg.Burst = 20, 50
	return cfg, nil
}

func healthHandler(c *controller) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !c.healthy() {
			http.Error(w, "caches not synced or update stuck", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	})
	return mux
}

// lead waits for the lease and runs the controller while holding it. It returns nil when ctx
// ends and an error when the lease is lost: the process then restarts and competes again, rather
// than reasoning about a worker that another replica may have overtaken.
func lead(ctx context.Context, client kubernetes.Interface, c *controller) error {
	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("leader election identity: %w", err)
	}
	leading := make(chan context.Context, 1)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: leaseNamespace, Name: leaseName},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: host + "_" + string(uuid.NewUUID())},
		},
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            leaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) { leading <- lctx },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}

	// The election has a context of its own, ended only once the worker returned: ReleaseOnCancel
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
	case <-elected:
	case lctx := <-leading:
		klog.InfoS("Service load balancer leading", "lease", leaseNamespace+"/"+leaseName)
		wctx, cancel := context.WithCancel(lctx)
		stop := context.AfterFunc(ctx, cancel)
		c.run(wctx)
		stop()
		cancel()
		if ctx.Err() != nil {
			return nil
		}
	}
	return fmt.Errorf("lost the leader lease %s/%s", leaseNamespace, leaseName)
}
