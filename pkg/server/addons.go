package server

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/client-go/kubernetes"

	"github.com/ketch-k8s/ketch/manifests"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/images"
	"github.com/ketch-k8s/ketch/pkg/kubeclient"
	"github.com/ketch-k8s/ketch/pkg/lifecycle"
	"github.com/ketch-k8s/ketch/pkg/server/deploy"
	"github.com/ketch-k8s/ketch/pkg/server/nodehosts"
)

// startAddons writes the bundled addon manifests into <data-dir>/server/manifests and starts,
// on stage, the controllers that apply that directory and keep CoreDNS's NodeHosts current.
func startAddons(n *lifecycle.Node, stage *lifecycle.Stage, cfg *config.Server, adminKubeconfig string, client kubernetes.Interface) error {
	image, err := images.AddonsImageName()
	if err != nil {
		return err
	}
	files, err := manifests.Render(manifests.Values{
		AddonsImage: image, ClusterDNS: cfg.ClusterDNS.String(), ClusterDomain: cfg.ClusterDomain,
	})
	if err != nil {
		return err
	}
	dir := cfg.Paths().ManifestsDir()
	if err := deploy.WriteBundled(dir, files, cfg.Disable); err != nil {
		return fmt.Errorf("writing the addon manifests: %w", err)
	}
	restConfig, err := kubeclient.Config(adminKubeconfig)
	if err != nil {
		return err
	}
	// The node counts as Ready only after the deployer's first pass, so that the addons'
	// objects exist when the server says so (a script's `kubectl rollout status` finds them).
	var once sync.Once
	firstPass := make(chan struct{})
	n.OnRegistered(func(ctx context.Context) error {
		select {
		case <-firstPass:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	n.Go(stage, "the addon deployer", func(ctx context.Context) error {
		return deploy.Run(ctx, deploy.Options{Dir: dir, Config: restConfig, OnPass: func() { once.Do(func() { close(firstPass) }) }})
	})
	n.Go(stage, "nodehosts", func(ctx context.Context) error { return nodehosts.Run(ctx, client) })
	return nil
}
