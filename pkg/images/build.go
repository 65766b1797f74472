package images

import (
	"encoding/json"
	"fmt"
	"runtime"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImageConfig is how the runtime starts the image (the upstream OCI type: Entrypoint, Cmd,
// Env, User, WorkingDir, Labels, ...) and the platform it is for.
type ImageConfig struct {
	Config ocispec.ImageConfig
	// Platform defaults to linux, this binary's GOARCH and, for arm, its GOARM as the variant
	// (DefaultPlatform): the images a node builds carry executables built together with ketch.
	Platform ocispec.Platform
}

// DefaultPlatform is the platform of the images a node builds: linux and the architecture this
// binary was compiled for (runtime.GOARCH is the target's, also in a cross build). For arm
// it carries the variant of GOARM (v7 in a release build), as the image index and config
// of a linux/arm/v7 image do; containerd on an armv7 or armv8 host matches it, and it does not
// claim to run on an armv6 host, which a GOARM=7 program cannot.
func DefaultPlatform() ocispec.Platform {
	return platformFor(runtime.GOARCH, armVariant)
}

func platformFor(goarch, armVariant string) ocispec.Platform {
	p := ocispec.Platform{OS: "linux", Architecture: goarch}
	if goarch == "arm" {
		p.Variant = armVariant
	}
	return p
}

// Image is a built image, held in memory as its compressed blobs until written out with
// WriteOCI or WriteDockerArchive.
type Image struct {
	// Manifest, Config and Layers describe the image's blobs.
	Manifest ocispec.Descriptor
	Config   ocispec.Descriptor
	Layers   []ocispec.Descriptor
	// Platform is the platform the config declares.
	Platform ocispec.Platform

	manifestJSON []byte
	configJSON   []byte
	layers       []*builtLayer
}

// Build makes an image of the given layers, bottom first. The result depends only on the
// arguments (and on the version of the gzip compressor go.mod pins): see the package doc.
func Build(layers []Layer, config ImageConfig) (*Image, error) {
	var built []*builtLayer
	for i, l := range layers {
		bl, err := buildLayer(l)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		built = append(built, bl)
	}
	return assemble(built, config)
}

// assemble makes the image of layers already built, bottom first.
func assemble(layers []*builtLayer, config ImageConfig) (*Image, error) {
	platform := config.Platform
	if platform.OS == "" {
		platform.OS = "linux"
	}
	if platform.Architecture == "" {
		def := DefaultPlatform()
		platform.Architecture, platform.Variant = def.Architecture, def.Variant
	}

	img := &Image{Platform: platform, layers: layers}
	var diffIDs []digest.Digest
	for _, bl := range layers {
		diffIDs = append(diffIDs, bl.diffID)
		img.Layers = append(img.Layers, ocispec.Descriptor{
			MediaType: bl.mediaType,
			Digest:    bl.digest,
			Size:      int64(len(bl.blob)),
		})
	}

	// No Created time and no history: both would tie the digest to the moment of the build.
	cfg := ocispec.Image{
		Platform: platform,
		Config:   config.Config,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	}
	var err error
	if img.configJSON, err = json.Marshal(cfg); err != nil {
		return nil, fmt.Errorf("encode image config: %w", err)
	}
	img.Config = ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageConfig,
		Digest:    digest.FromBytes(img.configJSON),
		Size:      int64(len(img.configJSON)),
	}

	manifest := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    img.Config,
		Layers:    img.Layers,
	}
	if manifest.Layers == nil {
		// The spec wants an array, and a null would make a different (and invalid) digest.
		manifest.Layers = []ocispec.Descriptor{}
	}
	if img.manifestJSON, err = json.Marshal(manifest); err != nil {
		return nil, fmt.Errorf("encode image manifest: %w", err)
	}
	img.Manifest = ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest,
		Digest:    digest.FromBytes(img.manifestJSON),
		Size:      int64(len(img.manifestJSON)),
	}
	return img, nil
}

// Tag is the content-derived tag of the image: the first 16 hex digits of its manifest
// digest. The name is not part of the manifest, so the tag does not depend on it.
func (img *Image) Tag() string {
	return img.Manifest.Digest.Encoded()[:16]
}

// LocalRepo is where the images a node builds itself are named.
const LocalRepo = "localhost/ketch"

// LocalName is the name of an image a node builds itself: localhost/ketch/<short>:<Tag>.
func LocalName(short string, img *Image) string {
	return LocalRepo + "/" + short + ":" + img.Tag()
}

// BuildImage builds an image and returns it as an OCI image layout tarball named name
// (empty: no name).
func BuildImage(name string, layers []Layer, config ImageConfig) ([]byte, error) {
	img, err := Build(layers, config)
	if err != nil {
		return nil, err
	}
	return img.OCIArchive(name)
}

// BuildDockerArchive builds an image and returns it as a docker-archive (`docker save`)
// tarball tagged name (empty: untagged).
func BuildDockerArchive(name string, layers []Layer, config ImageConfig) ([]byte, error) {
	img, err := Build(layers, config)
	if err != nil {
		return nil, err
	}
	return img.DockerArchive(name)
}
