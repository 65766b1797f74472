package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// appImage is a small image whose /app holds marker, so each test image is distinct.
func appImage(t *testing.T, marker string) *Image {
	t.Helper()
	img, err := Build([]Layer{{Files: []File{
		{Path: "/app", Mode: 0o755, Content: []byte(marker)},
		{Path: "/etc/app.conf", Mode: 0o600, Content: []byte("conf " + marker)},
	}}}, ImageConfig{Config: ocispec.ImageConfig{Entrypoint: []string{"/app"}}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func ociTar(t *testing.T, img *Image, name string) []byte {
	t.Helper()
	b, err := img.OCIArchive(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dockerTar(t *testing.T, img *Image, name string) []byte {
	t.Helper()
	b, err := img.DockerArchive(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdCompressed(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkUnpacked checks that name is in containerd, unpacked for overlayfs, and that the
// unpacked snapshot really holds path with the given mode and content.
func checkUnpacked(t *testing.T, client *containerd.Client, name, path string, mode os.FileMode, want []byte) {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), Namespace)
	img, err := client.GetImage(ctx, name)
	if err != nil {
		t.Fatalf("%s not in containerd: %v", name, err)
	}
	ok, err := img.IsUnpacked(ctx, DefaultSnapshotter)
	if err != nil || !ok {
		t.Fatalf("%s not unpacked for %s (%v)", name, DefaultSnapshotter, err)
	}
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A read-only view of a one-layer image is a bind mount of the layer's directory, so the
	// file can be read without mounting anything.
	sn := client.SnapshotService(DefaultSnapshotter)
	key := "ketch-test-view-" + strings.NewReplacer("/", "-", ":", "-", "@", "-").Replace(name)
	mounts, err := sn.View(ctx, key, identity.ChainID(diffIDs).String())
	if err != nil {
		t.Fatalf("view %s: %v", name, err)
	}
	defer sn.Remove(ctx, key)
	if len(diffIDs) != 1 || len(mounts) != 1 || mounts[0].Type != "bind" {
		t.Fatalf("%s: %d layers, mounts %+v; want one bind mount", name, len(diffIDs), mounts)
	}
	p := filepath.Join(mounts[0].Source, path)
	st, err := os.Stat(p)
	if err != nil {
		t.Fatalf("%s: unpacked snapshot lacks %s: %v", name, path, err)
	}
	if st.Mode().Perm() != mode {
		t.Errorf("%s: %s has mode %v, want %v", name, path, st.Mode().Perm(), mode)
	}
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s: %s holds %d bytes (%v), want %d", name, path, len(got), err, len(want))
	}
}

func TestImportIntoContainerd(t *testing.T) {
	client := startContainerd(t)
	ctx := context.Background()
	pauseName, pauseTar, pauseBin := pauseForTest(t)

	unnamed := appImage(t, "unnamed")
	cases := []struct {
		desc    string
		archive []byte
		opts    []ImportOption
		want    string
		path    string
		content []byte
	}{
		{"pause image", pauseTar, []ImportOption{WithPinned()}, pauseName, "/pause", pauseBin},
		{"OCI layout", ociTar(t, appImage(t, "oci"), "example.com/ketch/oci:v1"), nil,
			"example.com/ketch/oci:v1", "/app", []byte("oci")},
		{"docker-archive", dockerTar(t, appImage(t, "docker"), "ketch/docker:v1"), nil,
			"docker.io/ketch/docker:v1", "/app", []byte("docker")},
		{"gzipped docker-archive", gzipped(t, dockerTar(t, appImage(t, "gz"), "example.com/ketch/gz:v1")), nil,
			"example.com/ketch/gz:v1", "/app", []byte("gz")},
		{"gzipped OCI layout", gzipped(t, ociTar(t, appImage(t, "ocigz"), "example.com/ketch/ocigz:v1")), nil,
			"example.com/ketch/ocigz:v1", "/app", []byte("ocigz")},
		{"zstd OCI layout", zstdCompressed(t, ociTar(t, appImage(t, "ocizst"), "example.com/ketch/ocizst:v1")), nil,
			"example.com/ketch/ocizst:v1", "/app", []byte("ocizst")},
		{"unnamed OCI layout", ociTar(t, unnamed, ""), nil,
			UnnamedRepo + "@" + unnamed.Manifest.Digest.String(), "/app", []byte("unnamed")},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			names, err := Import(ctx, client, bytes.NewReader(c.archive), c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names, []string{c.want}) {
				t.Fatalf("imported %v, want [%s]", names, c.want)
			}
			mode := os.FileMode(0o755)
			checkUnpacked(t, client, c.want, c.path, mode, c.content)
		})
	}

	nsctx := namespaces.WithNamespace(ctx, Namespace)
	listed, err := client.ImageService().List(nsctx)
	if err != nil {
		t.Fatal(err)
	}
	var listedNames []string
	for _, img := range listed {
		listedNames = append(listedNames, img.Name)
		if img.Name == pauseName && img.Labels[criPinnedLabel] != criPinnedValue {
			t.Errorf("pause image is not pinned: %v", img.Labels)
		}
	}
	for _, c := range cases {
		if !slices.Contains(listedNames, c.want) {
			t.Errorf("image service lacks %s: %v", c.want, listedNames)
		}
	}

	infos, err := List(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != len(cases) {
		t.Errorf("List shows %d images, want %d", len(infos), len(cases))
	}
	for _, info := range infos {
		if !info.Unpacked || info.Size <= 0 || info.Pinned != (info.Name == pauseName) {
			t.Errorf("List: %+v", info)
		}
	}

	t.Run("Ensure", func(t *testing.T) {
		imported, err := Ensure(ctx, client, pauseName, bytes.NewReader(pauseTar), WithPinned())
		if err != nil || imported {
			t.Fatalf("Ensure of the present pause image imported=%v, %v; want nothing done", imported, err)
		}
		if err := client.ImageService().Delete(nsctx, pauseName); err != nil {
			t.Fatal(err)
		}
		imported, err = Ensure(ctx, client, pauseName, bytes.NewReader(pauseTar), WithPinned())
		if err != nil || !imported {
			t.Fatalf("Ensure of the removed pause image imported=%v, %v", imported, err)
		}
		checkUnpacked(t, client, pauseName, "/pause", 0o755, pauseBin)
		if _, err := Ensure(ctx, client, "localhost/ketch/other:1", bytes.NewReader(pauseTar)); err == nil {
			t.Error("Ensure accepted an archive without the named image")
		}
	})

	t.Run("bad archives", func(t *testing.T) {
		notAnImage := func() []byte {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			_ = tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: 2})
			_, _ = tw.Write([]byte("hi"))
			_ = tw.Close()
			return buf.Bytes()
		}()
		full := gzipped(t, ociTar(t, appImage(t, "cut"), "example.com/ketch/cut:v1"))
		for desc, b := range map[string][]byte{
			"garbage":         []byte(strings.Repeat("not a tarball ", 100)),
			"tar of no image": notAnImage,
			"truncated gzip":  full[:len(full)/2],
			"empty":           nil,
		} {
			if names, err := Import(ctx, client, bytes.NewReader(b)); err == nil {
				t.Errorf("%s: imported %v", desc, names)
			}
		}
	})
}
