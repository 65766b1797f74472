package images

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/containerd/v2/plugins/content/local"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var testPause struct {
	once sync.Once
	name string
	tar  []byte
	bin  []byte
	err  error
}

// pauseForTest returns the pause image and the binary in it. Under make the embedded binary is
// used, as shipped; from a bare `go test` (no embedded binary) cmd/pause is built here, so the
// pause image is always tested with a real pause program.
func pauseForTest(t *testing.T) (name string, tarball, bin []byte) {
	t.Helper()
	testPause.once.Do(func() {
		if b, err := fs.ReadFile(pauseDir, pauseFile); err == nil && len(b) > 0 {
			testPause.bin = b
			testPause.name, testPause.tar, testPause.err = PauseImage()
			return
		}
		if _, _, err := PauseImage(); !errors.Is(err, ErrNoPauseBinary) {
			testPause.err = errors.New("PauseImage without an embedded binary did not return ErrNoPauseBinary")
			return
		}
		dir, err := os.MkdirTemp("", "ketch-pause-")
		if err != nil {
			testPause.err = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "pause")
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		cmd := exec.Command(gobin, "build", "-buildvcs=false", "-trimpath", "-ldflags", "-s -w -buildid=", "-o", out, "github.com/ketch-k8s/ketch/cmd/pause")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			testPause.err = errors.New("build cmd/pause: " + err.Error() + ": " + string(b))
			return
		}
		if testPause.bin, testPause.err = os.ReadFile(out); testPause.err != nil {
			return
		}
		testPause.name, testPause.tar, testPause.err = PauseImageFrom(testPause.bin)
	})
	if testPause.err != nil {
		t.Fatal(testPause.err)
	}
	return testPause.name, testPause.tar, testPause.bin
}

// localImport reads an archive with containerd's own importer into a daemon-less local
// content store, the way client.Import does it, and returns the store and the index it made.
func localImport(t *testing.T, tarball []byte) (content.Store, ocispec.Index) {
	t.Helper()
	ctx := context.Background()
	store, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	desc, err := archive.ImportIndex(ctx, store, bytes.NewReader(tarball))
	if err != nil {
		t.Fatalf("containerd's ImportIndex rejects the archive: %v", err)
	}
	var idx ocispec.Index
	readJSON(t, store, desc, &idx)
	return store, idx
}

// readJSON reads a blob, checking its digest and size against desc, and decodes it.
func readJSON(t *testing.T, store content.Store, desc ocispec.Descriptor, v any) {
	t.Helper()
	b, err := content.ReadBlob(context.Background(), store, desc)
	if err != nil {
		t.Fatalf("read %s: %v", desc.Digest, err)
	}
	if int64(len(b)) != desc.Size || desc.Digest.Validate() != nil || desc.Digest.Algorithm().FromBytes(b) != desc.Digest {
		t.Fatalf("blob %s does not match its descriptor (size %d, want %d)", desc.Digest, len(b), desc.Size)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", desc.Digest, err)
	}
}

// layerFile is one entry of a layer as read back.
type layerFile struct {
	hdr     *tar.Header
	content []byte
}

// readLayer reads a layer blob (compressed or not, detected) into its entries, checking its
// digest and that its uncompressed digest is diffID.
func readLayer(t *testing.T, store content.Store, desc ocispec.Descriptor, diffID string) map[string]layerFile {
	t.Helper()
	blob, err := content.ReadBlob(context.Background(), store, desc)
	if err != nil {
		t.Fatalf("read layer %s: %v", desc.Digest, err)
	}
	if desc.Digest.Algorithm().FromBytes(blob) != desc.Digest {
		t.Fatalf("layer %s: digest mismatch", desc.Digest)
	}
	r, err := compression.DecompressStream(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	raw, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := desc.Digest.Algorithm().FromBytes(raw).String(); got != diffID {
		t.Fatalf("layer %s: uncompressed digest %s, config says %s", desc.Digest, got, diffID)
	}
	files := make(map[string]layerFile)
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = layerFile{hdr: hdr, content: b}
	}
}
