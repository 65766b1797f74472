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
	"os"
	"path/filepath"

	containerd "github.com/containerd/containerd/v2/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ketch-k8s/ketch/pkg/bundle"
)

// addonsProgram is the program's name in the bundle and its path in the image.
const addonsProgram = "ketch-addons"

// ErrNoAddonsBinary is returned from a binary built without make.
var ErrNoAddonsBinary = errors.New("ketch was built without the addon program (pkg/images/addons); build with make")

// addonsConfig is how the addon image starts: every addon pod names its role as the first
// argument. No user: each pod's securityContext chooses one.
var addonsConfig = ImageConfig{Config: ocispec.ImageConfig{Entrypoint: []string{"/" + addonsProgram}}}

func addonsBundle() (*bundle.Bundle, string, error) {
	// addonsDir (embed_<GOARCH>.go) holds cmd/ketch-addons as the Makefile packs it for this
	// architecture, in addons/linux_<GOARCH>/ (see addons/README.md).
	sub, err := fs.Sub(addonsDir, "addons/"+platformDir)
	if err != nil {
		return nil, "", fmt.Errorf("addon program: %w", err)
	}
	b, err := bundle.Open(sub)
	if errors.Is(err, bundle.ErrNotBuilt) {
		return nil, "", ErrNoAddonsBinary
	}
	if err != nil {
		return nil, "", fmt.Errorf("addon program: %w", err)
	}
	sum, ok := b.Sum(addonsProgram)
	if !ok {
		return nil, "", fmt.Errorf("addon program: %s is not in the bundle", addonsProgram)
	}
	return b, sum, nil
}

// AddonsImageName is the name of the addon image this binary makes, localhost/ketch/addons:<tag>.
// The server writes it into the addon manifests and every node of the same ketch version makes
// the same image, so it must be known without building it: the tag is derived from the
// program's checksum and the image config, the only inputs of the image's bytes.
func AddonsImageName() (string, error) {
	_, sum, err := addonsBundle()
	if err != nil {
		return "", err
	}
	return addonsImageName(sum)
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
// so that the kubelet's image garbage collection never removes it, and returns its name. Only a
// node that lacks the image unpacks the program (under dataDir/data) and builds the image, a
// second or two, in bundleDir (the node's config.Paths.BundleDir); the unpacked copy is removed
// once the image holds it.
func EnsureAddonsImage(ctx context.Context, client *containerd.Client, bundleDir string) (string, error) {
	b, sum, err := addonsBundle()
	if err != nil {
		return "", err
	}
	name, err := addonsImageName(sum)
	if err != nil {
		return "", err
	}
	var binDir string
	open := func() (io.ReadCloser, error) {
		dir, err := b.Unpack(bundleDir)
		if err != nil {
			return nil, fmt.Errorf("addon program: %w", err)
		}
		binDir = dir
		program := filepath.Join(dir, addonsProgram)
		img, err := Build([]Layer{{Files: []File{
			{Path: "/" + addonsProgram, Mode: 0o755, Source: program},
			// Writable scratch space for roles that need it comes from an emptyDir mounted here;
			// the directory must exist in a read-only root.
			{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		}}}, addonsConfig)
		if err != nil {
			return nil, fmt.Errorf("build addon image: %w", err)
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
	if binDir != "" {
		if err := os.RemoveAll(filepath.Dir(binDir)); err != nil {
			return "", fmt.Errorf("removing the unpacked addon program: %w", err)
		}
	}
	return name, nil
}
