package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/distribution/reference"
	"github.com/klauspost/compress/zstd"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// WriteOCI writes the image as an OCI image layout tarball (what `ctr images export`,
// buildkit's type=oci and skopeo's oci-archive write). A non-empty name is recorded the way
// containerd's exporter records it: the full name in io.containerd.image.name, which
// containerd's importer reads first, and the tag in org.opencontainers.image.ref.name, which is
// what the OCI spec expects there.
func (img *Image) WriteOCI(w io.Writer, name string) error {
	desc := img.Manifest
	desc.Platform = &img.Platform
	if name != "" {
		ref, err := reference.ParseDockerRef(name)
		if err != nil {
			return fmt.Errorf("image name %q: %w", name, err)
		}
		refName := ref.String()
		if tagged, ok := ref.(reference.Tagged); ok {
			refName = tagged.Tag()
		}
		desc.Annotations = map[string]string{
			images.AnnotationImageName: ref.String(),
			ocispec.AnnotationRefName:  refName,
		}
	}
	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{desc},
	})
	if err != nil {
		return fmt.Errorf("encode index.json: %w", err)
	}
	layout, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return fmt.Errorf("encode oci-layout: %w", err)
	}

	files := map[string]entryContent{
		ocispec.ImageIndexFile:  bytesContent(index),
		ocispec.ImageLayoutFile: bytesContent(layout),
		blobPath(img.Manifest):  bytesContent(img.manifestJSON),
		blobPath(img.Config):    bytesContent(img.configJSON),
	}
	for i, l := range img.layers {
		files[blobPath(img.Layers[i])] = bytesContent(l.blob)
	}
	return writeArchive(w, []string{"blobs/", "blobs/sha256/"}, files)
}

// WriteDockerArchive writes the image as a docker-archive tarball in the classic `docker save`
// layout (manifest.json, <config>.json, <diffID>/layer.tar) with uncompressed layers, as
// docker writes them. name must be a tag (or empty: untagged).
func (img *Image) WriteDockerArchive(w io.Writer, name string) error {
	var repoTags []string
	if name != "" {
		ref, err := reference.ParseDockerRef(name)
		if err != nil {
			return fmt.Errorf("image name %q: %w", name, err)
		}
		if _, ok := ref.(reference.Tagged); !ok {
			return fmt.Errorf("image name %q: a docker-archive can only carry tagged names", name)
		}
		repoTags = []string{ref.String()}
	}

	configPath := img.Config.Digest.Encoded() + ".json"
	files := map[string]entryContent{configPath: bytesContent(img.configJSON)}
	var dirs, layerPaths []string
	for _, l := range img.layers {
		dir := l.diffID.Encoded() + "/"
		p := dir + "layer.tar"
		layerPaths = append(layerPaths, p)
		if _, dup := files[p]; dup {
			continue
		}
		dirs = append(dirs, dir)
		files[p] = uncompressedContent(l)
	}
	manifest, err := json.Marshal([]struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{{Config: configPath, RepoTags: repoTags, Layers: layerPaths}})
	if err != nil {
		return fmt.Errorf("encode manifest.json: %w", err)
	}
	files["manifest.json"] = bytesContent(manifest)
	return writeArchive(w, dirs, files)
}

// OCIArchive returns WriteOCI's output.
func (img *Image) OCIArchive(name string) ([]byte, error) {
	var buf bytes.Buffer
	err := img.WriteOCI(&buf, name)
	return buf.Bytes(), err
}

// DockerArchive returns WriteDockerArchive's output.
func (img *Image) DockerArchive(name string) ([]byte, error) {
	var buf bytes.Buffer
	err := img.WriteDockerArchive(&buf, name)
	return buf.Bytes(), err
}

func blobPath(d ocispec.Descriptor) string {
	return "blobs/" + d.Digest.Algorithm().String() + "/" + d.Digest.Encoded()
}

// entryContent is one file of an archive: its size up front (the tar header needs it) and a
// way to produce its bytes, so an uncompressed layer is streamed rather than held in memory.
type entryContent struct {
	size int64
	open func() (io.Reader, error)
}

func bytesContent(b []byte) entryContent {
	return entryContent{size: int64(len(b)), open: func() (io.Reader, error) { return bytes.NewReader(b), nil }}
}

// uncompressedContent is a layer's tar, decompressed as it is read.
func uncompressedContent(l *builtLayer) entryContent {
	return entryContent{size: l.tarSize, open: func() (io.Reader, error) {
		if l.mediaType == ocispec.MediaTypeImageLayerZstd {
			d, err := zstd.NewReader(bytes.NewReader(l.blob), zstd.WithDecoderConcurrency(1))
			if err != nil {
				return nil, err
			}
			return d.IOReadCloser(), nil
		}
		return gzip.NewReader(bytes.NewReader(l.blob))
	}}
}

// writeArchive writes dirs and files sorted by name with fixed owner, modes and times, so that
// the same image always gives the same archive bytes.
func writeArchive(w io.Writer, dirs []string, files map[string]entryContent) error {
	names := append([]string(nil), dirs...)
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)

	tw := tar.NewWriter(w)
	for _, name := range names {
		c, isFile := files[name]
		hdr := &tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: epoch}
		if isFile {
			hdr = &tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg, Size: c.size, ModTime: epoch}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		if !isFile {
			continue
		}
		r, err := c.open()
		if err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		_, err = io.CopyN(tw, r, c.size)
		if rc, ok := r.(io.Closer); ok {
			rc.Close()
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish archive: %w", err)
	}
	return nil
}
