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

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/addons/role"
)

const (
	component = "ketch-servicelb"
	leaseName = "ketch-servicelb"
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

	cfg, err := role.RESTConfig(*kubeconfig, component)
	if err != nil {
		return err
	}
	// A node address change rewrites every Service's status and records an Event for each;
	// client-go's default of 5 requests a second would leave some Services on the old
	// addresses for many seconds.
	cfg.QPS, cfg.Burst = 20, 50
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}

	recorder, stopEvents := role.NewRecorder(ctx, client, component)
	defer stopEvents()
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := newController(client, factory, recorder)
	if err != nil {
		return err
	}
	stopHealth, err := role.ServeHealth(*healthAddr, c.check)
	if err != nil {
		return err
	}
	defer stopHealth()

	ctx, cancel := context.WithCancel(ctx)
	factory.Start(ctx.Done())
	defer func() {
		cancel() // the informers stop with ctx; Shutdown waits for them
		factory.Shutdown()
	}()
	klog.InfoS("Service load balancer starting", "lease", role.LeaseNamespace+"/"+leaseName)
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return nil // ctx ended
	}
	return role.RunLeader(ctx, client, role.Lease{Name: leaseName}, func(ctx context.Context) error {
		klog.InfoS("Service load balancer leading", "lease", role.LeaseNamespace+"/"+leaseName)
		c.run(ctx)
		return nil
	})
}
