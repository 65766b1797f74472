package images

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"testing"
	"testing/fstest"

	digest "github.com/opencontainers/go-digest"

	"github.com/ketch-k8s/ketch/pkg/bundle"
)

// addonsLayerDir makes a directory as build/bundle.mk makes it for the addon program: the layer
// (GNU tar's layout: the program, then tmp/ with the sticky bit), its diff ID and the
// program's checksum.
func addonsLayerDir(t *testing.T, program []byte) fstest.MapFS {
	t.Helper()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for _, h := range []*tar.Header{
		{Name: "ketch-addons", Mode: 0o755, Size: int64(len(program)), Typeflag: tar.TypeReg, ModTime: epoch},
		{Name: "tmp/", Mode: 0o1777, Typeflag: tar.TypeDir, ModTime: epoch},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(program)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(program)
	return fstest.MapFS{
		addonsLayerFile:  {Data: zstdCompressed(t, tarBuf.Bytes())},
		addonsDiffIDFile: {Data: fmt.Appendf(nil, "%s %d\n", digest.FromBytes(tarBuf.Bytes()), tarBuf.Len())},
		bundle.SumsFile:  {Data: []byte(hex.EncodeToString(sum[:]) + "  ketch-addons\n")},
	}
}

// The addon image goes into a real containerd with its zstd layer as it is, and runs from an
// unpacked snapshot holding the program; a layer that does not match its diff ID is refused
// and leaves nothing behind that a later good import would trip over.
func TestAddonsImageImportsReadyMadeLayer(t *testing.T) {
	client := startContainerd(t)
	ctx := context.Background()
	program := []byte("#!/bin/sh\necho addons\n")

	bad := addonsLayerDir(t, program)
	bad[addonsDiffIDFile] = &fstest.MapFile{Data: []byte(digest.FromString("something else").String() + " 2048\n")}
	l, err := openAddonsLayer(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ensureAddonsImage(ctx, client, l); err == nil {
		t.Fatal("a layer whose tar does not match its diff ID was imported")
	} else {
		t.Logf("refused as wanted: %v", err)
	}

	l, err = openAddonsLayer(addonsLayerDir(t, program))
	if err != nil {
		t.Fatal(err)
	}
	name, err := ensureAddonsImage(ctx, client, l)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := addonsImageName(l.programSum)
	if name != want {
		t.Errorf("imported %s, want %s", name, want)
	}
	checkUnpacked(t, client, name, "ketch-addons", 0o755, program)
	img, err := l.image()
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Layers[0].MediaType; got != "application/vnd.oci.image.layer.v1.tar+zstd" {
		t.Errorf("layer media type %s, want the zstd layer as it is", got)
	}

	// A second start finds it and imports nothing.
	imported, err := EnsureFunc(ctx, client, name, func() (io.ReadCloser, error) {
		return nil, errors.New("opened again")
	}, WithPinned())
	if err != nil || imported {
		t.Errorf("second ensure: imported %v, %v; want nothing to do", imported, err)
	}
}

// A directory the Makefile did not finish, or that something else wrote, is refused with an
// error naming the file.
func TestOpenAddonsLayerRefusesBadFiles(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(fstest.MapFS)
		want   string
	}{
		{"not built", func(m fstest.MapFS) { delete(m, bundle.SumsFile) }, ErrNoAddonsBinary.Error()},
		{"other program", func(m fstest.MapFS) {
			m[bundle.SumsFile] = &fstest.MapFile{Data: []byte(strings.Repeat("a", 64) + "  runc\n")}
		}, bundle.SumsFile},
		{"no diff ID", func(m fstest.MapFS) { delete(m, addonsDiffIDFile) }, addonsDiffIDFile},
		{"bad diff ID", func(m fstest.MapFS) { m[addonsDiffIDFile] = &fstest.MapFile{Data: []byte("sha256:zz 12\n")} }, addonsDiffIDFile},
		{"no size", func(m fstest.MapFS) {
			m[addonsDiffIDFile] = &fstest.MapFile{Data: []byte(digest.FromString("x").String())}
		}, addonsDiffIDFile},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := maps.Clone(addonsLayerDir(t, []byte("program")))
			c.change(m)
			_, err := openAddonsLayer(m)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error naming %s", err, c.want)
			}
		})
	}
}

// A docker-archive of an image with a zstd layer carries the layer uncompressed, as docker
// writes it: the tar whose digest is the diff ID.
func TestDockerArchiveOfZstdLayer(t *testing.T) {
	l, err := openAddonsLayer(addonsLayerDir(t, []byte("program")))
	if err != nil {
		t.Fatal(err)
	}
	img, err := l.image()
	if err != nil {
		t.Fatal(err)
	}
	archive, err := img.DockerArchive("")
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("no %s/layer.tar in the archive: %v", l.diffID.Encoded(), err)
		}
		if hdr.Name != l.diffID.Encoded()+"/layer.tar" {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if got := digest.FromBytes(b); got != l.diffID || int64(len(b)) != l.tarSize {
			t.Errorf("layer.tar is %s (%d bytes), want %s (%d)", got, len(b), l.diffID, l.tarSize)
		}
		return
	}
}
