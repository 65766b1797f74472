package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/component"
	"github.com/ketch-k8s/ketch/pkg/config"
)

// Certs are the files the control plane is configured with; package pki makes them.
type Certs struct {
	ClientCA, ClientCAKey                     string
	ServerCA, ServerCAKey                     string
	RequestHeaderCA                           string
	ServiceAccountKey, ServiceAccountPub      string
	APIServerCert, APIServerKey               string
	KubeletClientCert, KubeletClientKey       string
	FrontProxyClientCert, FrontProxyClientKey string
	AdminKubeconfig                           string
	ControllerKubeconfig, SchedulerKubeconfig string
}

// Config is what the control plane components are built from.
type Config struct {
	Server *config.Server
	Certs  Certs
	// WrapHandler, if set, goes in front of kube-apiserver's handler chain (the supervisor).
	WrapHandler func(http.Handler) http.Handler
}

// WaitReady polls kube-apiserver's /readyz until it answers ok, the component stops, or ctx
// ends.
func WaitReady(ctx context.Context, kubeconfig string, apiserver *component.Component) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("loading %s: %w", kubeconfig, err)
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
		case <-apiserver.Done():
			return apiserver.Stopped()
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready (%v): %w", last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
