package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// sampleLayers are a few entries of every kind, listed out of order on purpose.
func sampleLayers(t *testing.T) []Layer {
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, []byte("from a host file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []Layer{
		{Files: []File{
			{Path: "/pause", Mode: 0o755, Content: []byte("#!pause\n")},
			{Path: "etc/ketch/conf", Mode: 0o644, Source: src},
			{Path: "/bin/sh", Mode: fs.ModeSymlink | 0o777, Linkname: "/pause"},
		}},
		{Files: []File{{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777}}},
	}
}

var sampleConfig = ImageConfig{Config: ocispec.ImageConfig{Entrypoint: []string{"/pause"}, Env: []string{"A=1"}}}

func TestBuildIsDeterministic(t *testing.T) {
	layers := sampleLayers(t)
	oci1, err := BuildImage("example.com/a:1", layers, sampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	docker1, err := BuildDockerArchive("example.com/a:1", layers, sampleConfig)
	if err != nil {
		t.Fatal(err)
	}

	// Same files in another order, and the host file's mtime and mode changed: same bytes.
	reordered := []Layer{{Files: append([]File(nil), layers[0].Files...)}, layers[1]}
	f := reordered[0].Files
	f[0], f[2] = f[2], f[0]
	if err := os.Chmod(f[1].Source, 0o755); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(f[1].Source, later, later); err != nil {
		t.Fatal(err)
	}
	oci2, err := BuildImage("example.com/a:1", reordered, sampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	docker2, err := BuildDockerArchive("example.com/a:1", reordered, sampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(oci1, oci2) {
		t.Error("two OCI builds of the same image differ")
	}
	if !bytes.Equal(docker1, docker2) {
		t.Error("two docker-archive builds of the same image differ")
	}

	// The name is outside the manifest: it changes the archive, not the digest or tag.
	a, _ := Build(layers, sampleConfig)
	b, _ := Build(reordered, sampleConfig)
	if a.Manifest.Digest != b.Manifest.Digest || a.Tag() != b.Tag() {
		t.Errorf("manifest digests differ: %s, %s", a.Manifest.Digest, b.Manifest.Digest)
	}
}

// TestArchivesHaveNoBuildTimeState checks what two builds in one process cannot show: that
// nothing of the build's time or user reaches the bytes (a clock read once per process would
// give equal bytes within the process and different ones on the next start).
func TestArchivesHaveNoBuildTimeState(t *testing.T) {
	img, err := Build(sampleLayers(t), sampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range img.layers {
		zr, err := gzip.NewReader(bytes.NewReader(l.blob))
		if err != nil {
			t.Fatal(err)
		}
		if !zr.Header.ModTime.IsZero() || zr.Header.Name != "" || zr.Header.Comment != "" {
			t.Errorf("gzip header %+v carries build state", zr.Header)
		}
		checkTarHeaders(t, zr)
	}
	oci, err := img.OCIArchive("example.com/a:1")
	if err != nil {
		t.Fatal(err)
	}
	checkTarHeaders(t, bytes.NewReader(oci))
	docker, err := img.DockerArchive("example.com/a:1")
	if err != nil {
		t.Fatal(err)
	}
	checkTarHeaders(t, bytes.NewReader(docker))
}

// checkTarHeaders checks every entry has time 0, owner 0:0 and no user names, in name order.
func checkTarHeaders(t *testing.T, r io.Reader) {
	t.Helper()
	tr := tar.NewReader(r)
	prev := ""
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.ModTime.Unix() != 0 || !hdr.AccessTime.IsZero() || !hdr.ChangeTime.IsZero() ||
			hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" || len(hdr.PAXRecords) != 0 {
			t.Errorf("%s: header %+v carries build state", hdr.Name, hdr)
		}
		if hdr.Name <= prev {
			t.Errorf("%s comes after %s", hdr.Name, prev)
		}
		prev = hdr.Name
	}
}

func TestOCIArchiveImportsIntoContentStore(t *testing.T) {
	layers := sampleLayers(t)
	img, err := Build(layers, sampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	tarball, err := img.OCIArchive("example.com/ketch/test:v1")
	if err != nil {
		t.Fatal(err)
	}
	store, idx := localImport(t, tarball)

	if len(idx.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(idx.Manifests))
	}
	md := idx.Manifests[0]
	if md.Digest != img.Manifest.Digest || md.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("index points at %s %s, want %s", md.MediaType, md.Digest, img.Manifest.Digest)
	}
	if got := md.Annotations[images.AnnotationImageName]; got != "example.com/ketch/test:v1" {
		t.Errorf("image name annotation %q", got)
	}
	if got := md.Annotations[ocispec.AnnotationRefName]; got != "v1" {
		t.Errorf("ref.name annotation %q, want the tag", got)
	}
	if md.Platform == nil || md.Platform.OS != "linux" || md.Platform.Architecture != runtime.GOARCH {
		t.Errorf("index platform %v", md.Platform)
	}
	checkImage(t, store, md, ocispec.MediaTypeImageLayerGzip)
}

func TestDockerArchiveImportsIntoContentStore(t *testing.T) {
	layers := sampleLayers(t)
	img, err := Build(layers, sampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	tarball, err := img.DockerArchive("ketch/test:v1")
	if err != nil {
		t.Fatal(err)
	}
	store, idx := localImport(t, tarball)

	if len(idx.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(idx.Manifests))
	}
	md := idx.Manifests[0]
	// containerd writes the manifest for a docker-archive itself, normalizing the tag.
	if md.MediaType != images.MediaTypeDockerSchema2Manifest {
		t.Errorf("manifest media type %s", md.MediaType)
	}
	if got := md.Annotations[images.AnnotationImageName]; got != "docker.io/ketch/test:v1" {
		t.Errorf("image name annotation %q", got)
	}
	var m ocispec.Manifest
	readJSON(t, store, md, &m)
	if m.Config.Digest != img.Config.Digest {
		t.Errorf("config %s, want the OCI build's %s", m.Config.Digest, img.Config.Digest)
	}
	// docker save layers are uncompressed tars, so their digests are the diffIDs.
	checkImage(t, store, md, images.MediaTypeDockerSchema2Layer)

	if _, err := img.DockerArchive("example.com/x@sha256:" + strings.Repeat("a", 64)); err == nil {
		t.Error("a digest name was accepted for a docker-archive")
	}
}

// checkImage checks the manifest, config and layers of sampleLayers/sampleConfig as read
// back from the store.
func checkImage(t *testing.T, cs content.Store, md ocispec.Descriptor, layerType string) {
	t.Helper()
	var m ocispec.Manifest
	readJSON(t, cs, md, &m)
	var cfg ocispec.Image
	readJSON(t, cs, m.Config, &cfg)
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Errorf("config platform %s/%s", cfg.OS, cfg.Architecture)
	}
	if strings.Join(cfg.Config.Entrypoint, " ") != "/pause" || strings.Join(cfg.Config.Env, " ") != "A=1" {
		t.Errorf("config %+v", cfg.Config)
	}
	if len(m.Layers) != 2 || len(cfg.RootFS.DiffIDs) != 2 {
		t.Fatalf("%d layers, %d diffIDs, want 2", len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	for _, l := range m.Layers {
		if l.MediaType != layerType {
			t.Errorf("layer media type %s, want %s", l.MediaType, layerType)
		}
	}

	files := readLayer(t, cs, m.Layers[0], cfg.RootFS.DiffIDs[0].String())
	want := map[string]int64{"bin/": 0o755, "bin/sh": 0o777, "etc/": 0o755, "etc/ketch/": 0o755, "etc/ketch/conf": 0o644, "pause": 0o755}
	if len(files) != len(want) {
		t.Errorf("layer 0 has %d entries, want %d", len(files), len(want))
	}
	for name, mode := range want {
		f, ok := files[name]
		if !ok {
			t.Errorf("layer 0 lacks %s", name)
			continue
		}
		if f.hdr.Mode != mode || f.hdr.Uid != 0 || f.hdr.Gid != 0 || f.hdr.ModTime.Unix() != 0 {
			t.Errorf("%s: mode %o uid %d gid %d mtime %v", name, f.hdr.Mode, f.hdr.Uid, f.hdr.Gid, f.hdr.ModTime)
		}
	}
	if got := string(files["pause"].content); got != "#!pause\n" {
		t.Errorf("/pause holds %q", got)
	}
	if got := string(files["etc/ketch/conf"].content); got != "from a host file\n" {
		t.Errorf("/etc/ketch/conf holds %q", got)
	}
	if got := files["bin/sh"].hdr.Linkname; got != "/pause" {
		t.Errorf("/bin/sh links to %q", got)
	}
	tmp := readLayer(t, cs, m.Layers[1], cfg.RootFS.DiffIDs[1].String())["tmp/"]
	if tmp.hdr == nil || tmp.hdr.Mode != 0o1777 {
		t.Errorf("/tmp entry %+v, want a sticky 1777 directory", tmp.hdr)
	}
}

func TestPauseImage(t *testing.T) {
	name, tarball, bin := pauseForTest(t)
	if !regexp.MustCompile(`^localhost/ketch/pause:[0-9a-f]{16}$`).MatchString(name) {
		t.Fatalf("pause image name %q", name)
	}
	name2, tarball2, err := PauseImageFrom(bin)
	if err != nil || name2 != name || !bytes.Equal(tarball, tarball2) {
		t.Fatalf("a second build of the pause image differs (%q, %v)", name2, err)
	}

	store, idx := localImport(t, tarball)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Annotations[images.AnnotationImageName] != name {
		t.Fatalf("index %+v", idx.Manifests)
	}
	if tag := strings.TrimPrefix(name, "localhost/ketch/pause:"); !strings.HasPrefix(idx.Manifests[0].Digest.Encoded(), tag) {
		t.Errorf("tag %s is not the manifest digest %s", tag, idx.Manifests[0].Digest)
	}
	var m ocispec.Manifest
	readJSON(t, store, idx.Manifests[0], &m)
	var cfg ocispec.Image
	readJSON(t, store, m.Config, &cfg)
	if strings.Join(cfg.Config.Entrypoint, " ") != "/pause" || cfg.Config.User != "65535:65535" {
		t.Errorf("pause config %+v", cfg.Config)
	}
	if len(m.Layers) != 1 {
		t.Fatalf("pause image has %d layers", len(m.Layers))
	}
	files := readLayer(t, store, m.Layers[0], cfg.RootFS.DiffIDs[0].String())
	p, ok := files["pause"]
	if len(files) != 1 || !ok {
		t.Fatalf("pause layer holds %d entries, want only /pause", len(files))
	}
	if p.hdr.Mode != 0o755 || !bytes.Equal(p.content, bin) {
		t.Errorf("/pause mode %o, %d bytes; want 0755 and the %d-byte binary", p.hdr.Mode, len(p.content), len(bin))
	}

	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	if err := checkArch(bin, other); err == nil {
		t.Errorf("a pause binary for %s was accepted for %s", runtime.GOARCH, other)
	}
}

// TestPauseImageFrom: the exported builder makes PauseImage's image from the same binary (the
// embedded one, when there is one) and refuses what is not a pause program for this platform.
func TestPauseImageFrom(t *testing.T) {
	name, tarball, bin := pauseForTest(t)
	if embedded, embeddedTar, err := PauseImage(); err == nil {
		got, gotTar, err := PauseImageFrom(bin)
		if err != nil || got != embedded || !bytes.Equal(gotTar, embeddedTar) {
			t.Errorf("PauseImageFrom(embedded binary) = %q, %v; PauseImage = %q", got, err, embedded)
		}
	} else if !errors.Is(err, ErrNoPauseBinary) {
		t.Fatal(err)
	}
	got, gotTar, err := PauseImageFrom(bytes.Clone(bin))
	if err != nil || got != name || !bytes.Equal(gotTar, tarball) {
		t.Errorf("PauseImageFrom = %q, %v; want %q and the same bytes", got, err, name)
	}

	// The ELF header's e_machine (offset 18, this file's byte order) claims another machine.
	foreign := bytes.Clone(bin)
	machine := elf.EM_AARCH64
	if runtime.GOARCH == "arm64" {
		machine = elf.EM_X86_64
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatal(err)
	}
	f.ByteOrder.PutUint16(foreign[18:], uint16(machine))
	for what, b := range map[string][]byte{"nil": nil, "empty": {}, "not ELF": []byte("#!/bin/sh\nsleep inf\n"), "other arch": foreign} {
		if name, tb, err := PauseImageFrom(b); err == nil || name != "" || tb != nil {
			t.Errorf("%s: PauseImageFrom = %q, %d bytes, %v; want an error", what, name, len(tb), err)
		} else if !strings.HasPrefix(err.Error(), "pause binary: ") {
			t.Errorf("%s: error %q does not say it is about the pause binary", what, err)
		}
	}
}

func TestLayerRejectsBadEntries(t *testing.T) {
	for name, files := range map[string][]File{
		"duplicate":      {{Path: "/a", Mode: 0o644}, {Path: "a", Mode: 0o644}},
		"root":           {{Path: "/", Mode: fs.ModeDir | 0o755}},
		"file as parent": {{Path: "/a", Mode: 0o644}, {Path: "/a/b", Mode: 0o644}},
		"missing source": {{Path: "/a", Mode: 0o644, Source: "/nonexistent/ketch"}},
	} {
		if _, err := Build([]Layer{{Files: files}}, ImageConfig{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestDefaultPlatform: the images a node builds declare the platform containerd looks for on a
// node of that architecture. For arm that is linux/arm/v7 (a release builds GOARM=7), which
// containerd's matcher for an armv7 host and for an armv8 host running 32-bit programs both
// accept, and an armv6 host's does not (a GOARM=7 program would not run there).
func TestDefaultPlatform(t *testing.T) {
	if got := DefaultPlatform(); got.OS != "linux" || got.Architecture != runtime.GOARCH || (runtime.GOARCH == "arm") != (got.Variant != "") {
		t.Errorf("DefaultPlatform() = %+v on %s", got, runtime.GOARCH)
	}
	img, err := Build(nil, ImageConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(img.Platform, DefaultPlatform()) {
		t.Errorf("image platform %+v, want %+v", img.Platform, DefaultPlatform())
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(img.configJSON, &cfg); err != nil || !reflect.DeepEqual(cfg.Platform, DefaultPlatform()) {
		t.Errorf("config platform %+v (%v), want %+v", cfg.Platform, err, DefaultPlatform())
	}

	linux := func(arch, variant string) ocispec.Platform {
		return ocispec.Platform{OS: "linux", Architecture: arch, Variant: variant}
	}
	for _, tc := range []struct {
		goarch, goarm string
		want          ocispec.Platform
		// The platforms containerd's matcher of a host (platforms.Only(DefaultSpec()))
		// accepts the image on, and some it refuses it on.
		hosts, notHosts []ocispec.Platform
	}{
		{"amd64", "", linux("amd64", ""), []ocispec.Platform{linux("amd64", "")}, []ocispec.Platform{linux("arm64", "")}},
		// An arm64 host has no variant or v8; both match an image without one.
		{"arm64", "", linux("arm64", ""), []ocispec.Platform{linux("arm64", ""), linux("arm64", "v8")}, []ocispec.Platform{linux("amd64", "")}},
		{"arm", "v7", linux("arm", "v7"), []ocispec.Platform{linux("arm", "v7"), linux("arm", "v8"), linux("arm64", "v8")}, []ocispec.Platform{linux("arm", "v6")}},
		{"arm", "v6", linux("arm", "v6"), []ocispec.Platform{linux("arm", "v6"), linux("arm", "v7")}, []ocispec.Platform{linux("arm", "v5")}},
		// GOARM applies to arm alone.
		{"arm64", "v7", linux("arm64", ""), nil, nil},
	} {
		got := platformFor(tc.goarch, tc.goarm)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("platformFor(%s, %q) = %+v, want %+v", tc.goarch, tc.goarm, got, tc.want)
		}
		// Already in containerd's canonical form: what containerd records is what we wrote.
		if n := platforms.Normalize(got); !reflect.DeepEqual(n, got) {
			t.Errorf("%+v normalizes to %+v", got, n)
		}
		for _, h := range tc.hosts {
			if !platforms.Only(h).Match(got) {
				t.Errorf("a %s host does not match %s", platforms.FormatAll(h), platforms.FormatAll(got))
			}
		}
		for _, h := range tc.notHosts {
			if platforms.Only(h).Match(got) {
				t.Errorf("a %s host matches %s", platforms.FormatAll(h), platforms.FormatAll(got))
			}
		}
	}
}
