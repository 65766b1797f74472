package images

import (
	"context"
	"fmt"
	"io"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/containerd/v2/pkg/labels"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
)

const (
	// Namespace is containerd's namespace for the CRI plugin: images the kubelet can use
	// live there.
	Namespace = "k8s.io"
	// DefaultSnapshotter is the snapshotter ketch's containerd (like the CRI plugin's
	// default) uses; an image is unpacked for it on import so the first pod starts at once.
	DefaultSnapshotter = "overlayfs"
	// UnnamedRepo names images that carry no usable name in their archive:
	// localhost/import@<manifest digest>. ctr names them import-<date>@<digest>; the date is
	// left out so that importing the same archive again gives the same name, and localhost/
	// keeps the name fully qualified, so the CRI plugin resolves it as written in a pod spec.
	UnnamedRepo = "localhost/import"

	// The CRI plugin's labels (internal/cri/labels in containerd, which cannot be imported):
	// "managed" is what the CRI plugin sets on the images it pulls; "pinned" keeps the
	// kubelet's image garbage collector away from the image.
	criImageLabel   = labels.CRIContainerdPrefix + ".image"
	criManagedValue = "managed"
	criPinnedLabel  = labels.CRIContainerdPrefix + ".pinned"
	criPinnedValue  = "pinned"
)

// ImportOption changes how Import, ImportDir and Ensure load images.
type ImportOption func(*importOptions)

type importOptions struct {
	pinned    bool
	stateFile string // ImportDir's; empty: StateFileName in the directory
}

// WithPinned pins the imported images, so that the kubelet's image garbage collection never
// removes them: for the images a node cannot get back without a restart (pause, addons).
func WithPinned() ImportOption {
	return func(o *importOptions) { o.pinned = true }
}

func newImportOptions(opts []ImportOption) importOptions {
	o := importOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Import loads a docker-archive (`docker save`) or OCI image layout tarball, plain or
// compressed with gzip or zstd (detected from the magic bytes, not the file name), into
// containerd's k8s.io namespace and unpacks every image for the snapshotter, as
// `ctr images import` does. It returns the names it created; images without a name in the
// archive are named UnnamedRepo@<manifest digest>. Content for other platforms than this node's
// is not imported, and an image with nothing for this node's platform is an error.
func Import(ctx context.Context, client *containerd.Client, r io.Reader, opts ...ImportOption) ([]string, error) {
	imgs, err := importImages(ctx, client, r, newImportOptions(opts))
	return imageNames(imgs), err
}

// importImages is Import returning the image records, whose targets ImportDir remembers.
func importImages(ctx context.Context, client *containerd.Client, r io.Reader, o importOptions) ([]images.Image, error) {
	ctx = namespaces.WithNamespace(ctx, Namespace)
	// One lease across import and unpack: the importer's own lease ends when it returns,
	// and the snapshots made by unpacking are referenced only once unpacking completes.
	ctx, done, err := client.WithLease(ctx)
	if err != nil {
		return nil, fmt.Errorf("create lease: %w", err)
	}
	defer done(context.WithoutCancel(ctx))

	// containerd's own detection, the one it uses for layers.
	tarStream, err := compression.DecompressStream(r)
	if err != nil {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	defer tarStream.Close()

	imageLabels := map[string]string{criImageLabel: criManagedValue}
	if o.pinned {
		imageLabels[criPinnedLabel] = criPinnedValue
	}
	imgs, err := client.Import(ctx, tarStream,
		containerd.WithImageRefTranslator(fullReference),
		containerd.WithDigestRef(archive.DigestTranslator(UnnamedRepo)),
		containerd.WithSkipDigestRef(func(name string) bool { return name != "" }),
		// docker save of one platform of a multi-platform image leaves the others' blobs out.
		containerd.WithSkipMissing(),
		containerd.WithImageLabels(imageLabels),
	)
	if err != nil {
		return nil, fmt.Errorf("import archive: %w", err)
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("import archive: it holds no image")
	}

	unpacked := make(map[digest.Digest]bool)
	for _, img := range imgs {
		if unpacked[img.Target.Digest] {
			continue
		}
		// The client's platform is the one client.Import kept content for.
		if err := containerd.NewImage(client, img).Unpack(ctx, DefaultSnapshotter); err != nil {
			return imgs, fmt.Errorf("unpack %s for %s: %w", img.Name, DefaultSnapshotter, err)
		}
		unpacked[img.Target.Digest] = true
	}
	return imgs, nil
}

// imageNames is the names of imgs, in order.
func imageNames(imgs []images.Image) []string {
	names := make([]string, 0, len(imgs))
	for _, img := range imgs {
		names = append(names, img.Name)
	}
	return names
}

// fullReference keeps an OCI layout's org.opencontainers.image.ref.name when it is a whole
// image reference, normalized as the CRI plugin looks names up (alpine:3 ->
// docker.io/library/alpine:3). A bare tag ("latest") says nothing about the repository, so
// such an image counts as unnamed rather than becoming an image called "latest".
func fullReference(ref string) string {
	if !strings.ContainsAny(ref, "/:@") {
		return ""
	}
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return ""
	}
	return named.String()
}

// Ensure imports archive only when containerd does not already hold name unpacked. With
// content-derived names (LocalName) that makes a restart import nothing; it reports whether it
// imported.
func Ensure(ctx context.Context, client *containerd.Client, name string, archive io.Reader, opts ...ImportOption) (bool, error) {
	return EnsureFunc(ctx, client, name, func() (io.ReadCloser, error) { return io.NopCloser(archive), nil }, opts...)
}

// EnsureFunc is Ensure for an archive that is costly to produce: open is called only when
// the image must be imported, and what it returns is closed afterwards.
func EnsureFunc(ctx context.Context, client *containerd.Client, name string, open func() (io.ReadCloser, error), opts ...ImportOption) (bool, error) {
	o := newImportOptions(opts)
	ctx = namespaces.WithNamespace(ctx, Namespace)
	img, err := client.ImageService().Get(ctx, name)
	switch {
	case err == nil:
		pinnedOK := !o.pinned || img.Labels[criPinnedLabel] == criPinnedValue
		ok, err := containerd.NewImage(client, img).IsUnpacked(ctx, DefaultSnapshotter)
		if err == nil && ok && pinnedOK {
			return false, nil
		}
	case !errdefs.IsNotFound(err):
		return false, fmt.Errorf("look up %s: %w", name, err)
	}
	archive, err := open()
	if err != nil {
		return true, err
	}
	defer archive.Close()
	names, err := Import(ctx, client, archive, opts...)
	if err != nil {
		return true, fmt.Errorf("import %s: %w", name, err)
	}
	for _, n := range names {
		if n == name {
			return true, nil
		}
	}
	return true, fmt.Errorf("import %s: the archive holds %v instead", name, names)
}
