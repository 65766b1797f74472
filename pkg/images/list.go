package images

import (
	"context"
	"fmt"
	"sort"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	digest "github.com/opencontainers/go-digest"
)

// ImageInfo is one line of `ketch images list`.
type ImageInfo struct {
	Name   string
	Digest digest.Digest // of the image's target (manifest or index)
	// Size is the content size for this node's platform, or -1 when content is missing.
	Size int64
	// Unpacked tells whether the image is ready for the snapshotter (DefaultSnapshotter).
	Unpacked bool
	// Pinned images are never removed by the kubelet's image garbage collection.
	Pinned bool
}

// List returns the images in containerd's k8s.io namespace, sorted by name.
func List(ctx context.Context, client *containerd.Client) ([]ImageInfo, error) {
	ctx = namespaces.WithNamespace(ctx, Namespace)
	imgs, err := client.ImageService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	infos := make([]ImageInfo, 0, len(imgs))
	for _, img := range imgs {
		i := containerd.NewImage(client, img)
		info := ImageInfo{
			Name:   img.Name,
			Digest: img.Target.Digest,
			Size:   -1,
			Pinned: img.Labels[criPinnedLabel] == criPinnedValue,
		}
		// A per-image failure (content for another platform only, say) is shown, not fatal.
		if size, err := i.Size(ctx); err == nil {
			info.Size = size
		}
		info.Unpacked, _ = i.IsUnpacked(ctx, DefaultSnapshotter)
		infos = append(infos, info)
	}
	sort.Slice(infos, func(a, b int) bool { return infos[a].Name < infos[b].Name })
	return infos, nil
}
