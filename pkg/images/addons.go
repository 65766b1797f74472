package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ketch-k8s/ketch/pkg/bundle"
	"github.com/ketch-k8s/ketch/pkg/embedpages"
)

// addonsProgram is the program's name in the image, at its root.
const addonsProgram = "ketch-addons"

// The files the Makefile makes in addons/linux_<GOARCH>/ (build/bundle.mk), beside the
// program's checksum in bundle.SumsFile: the image's one layer as it goes into containerd, and
// the digest and size of its uncompressed tar.
const (
	addonsLayerFile  = "layer.tar.zst"
	addonsDiffIDFile = "layer.diffid"
)

// ErrNoAddonsBinary is returned from a binary built without make.
var ErrNoAddonsBinary = errors.New("ketch was built without the addon program (pkg/images/addons); build with make")

// addonsConfig is how the addon image starts: every addon pod names its role as the first
// argument. No user: each pod's securityContext chooses one.
var addonsConfig = ImageConfig{Config: ocispec.ImageConfig{Entrypoint: []string{"/" + addonsProgram}}}

// addonsLayer is the addon image's layer as this binary carries it.
type addonsLayer struct {
	fsys       fs.FS  // holds addonsLayerFile
	programSum string // hex sha256 of the program
	diffID     digest.Digest
	tarSize    int64
}

func embeddedAddonsLayer() (*addonsLayer, error) {
	// addonsDir (embed_<GOARCH>.go) holds the Makefile's output for this architecture, in
	// addons/linux_<GOARCH>/ (see addons/README.md).
	sub, err := fs.Sub(addonsDir, "addons/"+platformDir)
	if err != nil {
		return nil, fmt.Errorf("addon program: %w", err)
	}
	return openAddonsLayer(sub)
}

// openAddonsLayer reads the layer's description from fsys, a directory as the Makefile makes it.
func openAddonsLayer(fsys fs.FS) (*addonsLayer, error) {
	sum, err := bundle.ReadSum(fsys, addonsProgram)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoAddonsBinary
	}
	if err != nil {
		return nil, fmt.Errorf("addon program: %w", err)
	}
	raw, err := fs.ReadFile(fsys, addonsDiffIDFile)
	if err != nil {
		return nil, fmt.Errorf("addon program: %w", err)
	}
	l := &addonsLayer{fsys: fsys, programSum: sum}
	d, size, ok := strings.Cut(strings.TrimSpace(string(raw)), " ")
	if ok {
		l.diffID, err = digest.Parse(d)
		if err == nil {
			l.tarSize, err = strconv.ParseInt(size, 10, 64)
		}
	}
	if !ok || err != nil {
		return nil, fmt.Errorf("addon program: %s is %q, want \"sha256:<hex> <size>\"", addonsDiffIDFile, raw)
	}
	return l, nil
}

// AddonsImageName is the name of the addon image this binary makes, localhost/ketch/addons:<tag>.
// The server writes it into the addon manifests and every node of the same ketch version makes
// the same image, so it must be known without building it: the tag is derived from the
// program's checksum and the image config, which with the fixed /tmp make the image's content.
func AddonsImageName() (string, error) {
	l, err := embeddedAddonsLayer()
	if err != nil {
		return "", err
	}
	return addonsImageName(l.programSum)
}

func addonsImageName(programSum string) (string, error) {
	cfg, err := json.Marshal(addonsConfig)
	if err != nil {
		return "", fmt.Errorf("encode addon image config: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(programSum))
	h.Write(cfg)
	return LocalRepo + "/addons:" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// EnsureAddonsImage imports the addon image into containerd unless it is already there, pinned
// so that the kubelet's image garbage collection never removes it, and returns its name. The
// layer goes in as the Makefile compressed it: containerd decompresses it once, into its
// snapshot, and checks it against the diff ID on the way. This process does not read the
// layer again: its pages are given back (package embedpages).
func EnsureAddonsImage(ctx context.Context, client *containerd.Client) (string, error) {
	l, err := embeddedAddonsLayer()
	if err != nil {
		return "", err
	}
	name, err := ensureAddonsImage(ctx, client, l)
	embedpages.Done(addonsDir, "addons/"+platformDir+"/"+addonsLayerFile)
	return name, err
}

func ensureAddonsImage(ctx context.Context, client *containerd.Client, l *addonsLayer) (string, error) {
	name, err := addonsImageName(l.programSum)
	if err != nil {
		return "", err
	}
	open := func() (io.ReadCloser, error) {
		img, err := l.image()
		if err != nil {
			return nil, err
		}
		// Streamed: the archive is never held in memory whole. Closing the reader ends the
		// writer if the import gives up early.
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(img.WriteOCI(pw, name)) }()
		return pr, nil
	}
	if _, err := EnsureFunc(ctx, client, name, open, WithPinned()); err != nil {
		return "", fmt.Errorf("addon image: %w", err)
	}
	return name, nil
}

// image is the addon image of the layer.
func (l *addonsLayer) image() (*Image, error) {
	blob, err := fs.ReadFile(l.fsys, addonsLayerFile)
	if err != nil {
		return nil, fmt.Errorf("addon image layer: %w", err)
	}
	img, err := assemble([]*builtLayer{{
		blob: blob, mediaType: ocispec.MediaTypeImageLayerZstd, digest: digest.FromBytes(blob),
		diffID: l.diffID, tarSize: l.tarSize,
	}}, addonsConfig)
	if err != nil {
		return nil, fmt.Errorf("build addon image: %w", err)
	}
	return img, nil
}
