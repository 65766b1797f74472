// Package role is the scaffolding that the long-running roles of the addon image
// (cmd/ketch-addons) share: the API client configuration, the event recorder, the /healthz
// endpoint the kubelet probes, and leader election on a Lease, so that of the replicas a
// rolling Deployment runs only one acts at a time.
package role

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/ketch-k8s/ketch/pkg/kubeclient"
)

// RESTConfig is the API client configuration from the kubeconfig file, or from the pod's
// service account when kubeconfig is empty, naming the role as userAgent.
func RESTConfig(kubeconfig, userAgent string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		if cfg, err = kubeclient.Config(kubeconfig); err != nil {
			return nil, fmt.Errorf("reading --kubeconfig: %w", err)
		}
	} else if cfg, err = rest.InClusterConfig(); err != nil {
		return nil, fmt.Errorf("reading the in-cluster API config (outside a pod, give --kubeconfig): %w", err)
	}
	cfg.UserAgent = userAgent
	return cfg, nil
}

// NewRecorder records events as component until ctx ends or stop is called, whichever comes
// first; it also logs them at verbosity 4.
func NewRecorder(ctx context.Context, client kubernetes.Interface, component string) (_ record.EventRecorder, stop func()) {
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartStructuredLogging(4)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	return broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component}), broadcaster.Shutdown
}
