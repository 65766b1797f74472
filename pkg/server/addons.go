package server

import (
	"context"
	"fmt"

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
	n.Go(stage, "the addon deployer", func(ctx context.Context) error {
		return deploy.Run(ctx, deploy.Options{Dir: dir, Config: restConfig})
	})
	n.Go(stage, "nodehosts", func(ctx context.Context) error { return nodehosts.Run(ctx, client) })
	return nil
}
