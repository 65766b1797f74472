package server

import (
	"context"
	"fmt"
	"path/filepath"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ketch-k8s/ketch/manifests"
	"github.com/ketch-k8s/ketch/pkg/component"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/images"
	"github.com/ketch-k8s/ketch/pkg/server/deploy"
	"github.com/ketch-k8s/ketch/pkg/server/nodehosts"
)

// startAddons writes the bundled addon manifests into <data-dir>/server/manifests and starts
// the controllers that apply that directory and keep CoreDNS's NodeHosts current.
func startAddons(ctx context.Context, cfg *config.Server, adminKubeconfig string, client kubernetes.Interface) ([]*component.Component, error) {
	image, err := images.AddonsImageName()
	if err != nil {
		return nil, err
	}
	files, err := manifests.Render(manifests.Values{
		AddonsImage: image, ClusterDNS: cfg.ClusterDNS.String(), ClusterDomain: cfg.ClusterDomain,
	})
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.ServerDir(), "manifests")
	if err := deploy.WriteBundled(dir, files, cfg.Disable); err != nil {
		return nil, fmt.Errorf("writing the addon manifests: %w", err)
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", adminKubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", adminKubeconfig, err)
	}
	return []*component.Component{
		component.Start("deploy", func() error { return deploy.Run(ctx, deploy.Options{Dir: dir, Config: restConfig}) }),
		component.Start("nodehosts", func() error { return nodehosts.Run(ctx, client) }),
	}, nil
}
