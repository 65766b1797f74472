package localpath

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

const (
	// The lease that elects the one provisioner at work, while a Deployment rolls.
	leaseNamespace = "kube-system"
	leaseName      = "ketch-local-path"

	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
	// leaseGrace is how long the leader may fail to renew before /healthz fails and the kubelet
	// restarts it.
	leaseGrace = 20 * time.Second
)

type options struct {
	kubeconfig      string
	helperImage     string
	namespace       string
	provisionerName string
	healthAddr      string
}

// ProvisionerMain runs the provisioner until ctx ends, given the arguments after the role name
// (-h lists them). It acts only while it holds the Lease kube-system/ketch-local-path, and
// serves GET /healthz for the kubelet's probes all along. Losing the lease is an error: the
// pod restarts and competes again with fresh caches.
func ProvisionerMain(ctx context.Context, args []string) error {
	opts, err := parseProvisionerFlags(args)
	if err != nil {
		return err
	}
	cfg, err := restConfig(opts.kubeconfig)
	if err != nil {
		return err
	}
	cfg.UserAgent = component
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("building the API client: %w", err)
	}

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	broadcaster.StartStructuredLogging(4)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})

	watchdog := leaderelection.NewLeaderHealthzAdaptor(leaseGrace)
	stopHealth, err := serveHealth(opts.healthAddr, watchdog.Check)
	if err != nil {
		return err
	}
	defer stopHealth()

	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("naming this candidate for the lease: %w", err)
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, leaseNamespace, leaseName,
		client.CoreV1(), client.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: host + "_" + string(uuid.NewUUID()), EventRecorder: recorder})
	if err != nil {
		return fmt.Errorf("lease %s/%s: %w", leaseNamespace, leaseName, err)
	}
	// The elector starts the controller in a goroutine of its own and does not wait for it, nor
	// say whether it started it; this function returns only once the controller has stopped.
	// A controller goroutine that starts after the elector has returned does nothing.
	var (
		mu      sync.Mutex
		stopped bool
		running sync.WaitGroup
		runErr  error
	)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            leaseName,
		LeaseDuration:   leaseDuration,
		RenewDeadline:   renewDeadline,
		RetryPeriod:     retryPeriod,
		ReleaseOnCancel: true,
		WatchDog:        watchdog,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				mu.Lock()
				if stopped {
					mu.Unlock()
					return
				}
				running.Add(1)
				mu.Unlock()
				defer running.Done()
				c, err := newController(client, recorder, opts)
				if err == nil {
					err = c.run(ctx)
				}
				runErr = err
			},
			OnStoppedLeading: func() { klog.V(2).InfoS("Local-path provisioner not leading") },
			OnNewLeader: func(identity string) {
				klog.V(2).InfoS("Local-path provisioner leader", "identity", identity)
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	watchdog.SetLeaderElection(le)
	le.Run(ctx)
	mu.Lock()
	stopped = true
	mu.Unlock()
	running.Wait()
	switch {
	case runErr != nil:
		return runErr
	case ctx.Err() == nil:
		// The elector returns early only when it has led and lost the lease.
		return fmt.Errorf("lost the lease %s/%s", leaseNamespace, leaseName)
	}
	return nil
}

func parseProvisionerFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("local-path-provisioner", flag.ContinueOnError)
	klog.InitFlags(fs)
	var o options
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty: the pod's service account")
	fs.StringVar(&o.helperImage, "helper-image", "", "image of the helper pods that make and delete directories on the nodes (required)")
	fs.StringVar(&o.namespace, "namespace", "kube-system", "namespace of the helper pods")
	fs.StringVar(&o.provisionerName, "provisioner-name", defaultProvisionerName, "provisioner name the StorageClasses give")
	fs.StringVar(&o.healthAddr, "health-addr", ":8080", "address of the /healthz endpoint")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	switch {
	case fs.NArg() > 0:
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.helperImage == "":
		return options{}, errors.New("--helper-image is required")
	case o.namespace == "":
		return options{}, errors.New("--namespace must not be empty")
	case o.provisionerName == "":
		return options{}, errors.New("--provisioner-name must not be empty")
	}
	return o, nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("reading --kubeconfig: %w", err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the in-cluster API config (outside a pod, give --kubeconfig): %w", err)
	}
	return cfg, nil
}

// serveHealth serves GET /healthz on addr, failing when check does, until stop is called. It
// listens before returning, so that a bad address fails the start.
func serveHealth(addr string, check func(*http.Request) error) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serving /healthz: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", healthHandler(check))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "Serving /healthz")
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

func healthHandler(check func(*http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := check(r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
}
