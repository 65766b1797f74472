package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/etcd"
	"github.com/ketch-k8s/ketch/pkg/kubeclient"
	"github.com/ketch-k8s/ketch/pkg/pki"
)

// Config is what the control plane components are built from.
type Config struct {
	Server *config.Server
	// PKI is the control plane's certificates and kubeconfigs.
	PKI *pki.ControlPlane
	// Etcd is how kube-apiserver reaches the datastore.
	Etcd etcd.ClientConfig
	// WrapHandler, if set, goes in front of kube-apiserver's handler chain (the supervisor).
	WrapHandler func(http.Handler) http.Handler
}

// WaitReady polls kube-apiserver's /readyz until it answers ok or ctx ends (with its cause:
// the node frame ends it when kube-apiserver's component stops).
func WaitReady(ctx context.Context, kubeconfig string) error {
	cfg, err := kubeclient.Config(kubeconfig)
	if err != nil {
		return err
	}
	cfg.Timeout = 5 * time.Second
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	url := cfg.Host + "/readyz"
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s answered %s", url, resp.Status)
		}
		if !errors.Is(err, last) {
			klog.V(2).InfoS("Waiting for kube-apiserver", "reason", err)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready (%v): %w", last, context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
