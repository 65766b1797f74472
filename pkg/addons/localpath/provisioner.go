package localpath

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/addons/role"
)

// leaseName is the Lease in kube-system that elects the one provisioner at work, while a
// Deployment rolls.
const leaseName = "ketch-local-path"

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
	cfg, err := role.RESTConfig(opts.kubeconfig, component)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("building the API client: %w", err)
	}
	recorder, stopEvents := role.NewRecorder(ctx, client, component)
	defer stopEvents()

	health := role.NewLeaderHealth()
	stopHealth, err := role.ServeHealth(opts.healthAddr, health.Check)
	if err != nil {
		return err
	}
	defer stopHealth()

	lease := role.Lease{Name: leaseName, Recorder: recorder, Health: health}
	return role.RunLeader(ctx, client, lease, func(ctx context.Context) error {
		c, err := newController(client, recorder, opts)
		if err != nil {
			return err
		}
		return c.run(ctx)
	})
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
