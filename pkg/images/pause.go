package images

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// pauseDir (embed_<GOARCH>.go) holds the pause binary that the Makefile builds from cmd/pause
// for this architecture, pause/linux_<GOARCH>/pause. The directory is embedded rather than the
// file so that a checkout that never ran make still builds and vets (its .keep is always
// there); see pause/README.md.
var pauseFile = path.Join("pause", platformDir, "pause")

// ErrNoPauseBinary is returned by PauseImage from a binary built without make.
var ErrNoPauseBinary = errors.New("ketch was built without the pause binary (pkg/images/" + pauseFile + "); build with make")

var pause struct {
	once sync.Once
	name string
	tar  []byte
	err  error
}

// PauseImage returns the pod sandbox image, localhost/ketch/pause:<tag>, as an OCI image
// layout tarball. Its bytes depend only on the embedded pause binary, so the name (which
// carries the digest) is the same on every start and an image of that name already in
// containerd never needs importing again.
func PauseImage() (name string, tar []byte, err error) {
	pause.once.Do(func() {
		bin, err := fs.ReadFile(pauseDir, pauseFile)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && len(bin) == 0) {
			pause.err = ErrNoPauseBinary
			return
		}
		if err != nil {
			pause.err = fmt.Errorf("read embedded pause binary: %w", err)
			return
		}
		pause.name, pause.tar, pause.err = pauseImage(bin, "embedded pause binary")
	})
	return pause.name, pause.tar, pause.err
}

// PauseImageFrom builds the pause image as PauseImage does, around bin (a static build of
// cmd/pause for this binary's architecture) instead of the embedded binary: for tests and tools
// run without make, where PauseImage returns ErrNoPauseBinary. The same bin gives the same name
// and bytes as PauseImage.
func PauseImageFrom(bin []byte) (name string, tar []byte, err error) {
	return pauseImage(bin, "pause binary")
}

// pauseImage builds the pause image around bin: /pause alone, run as 65535:65535 like the
// upstream image (the sandbox needs no privileges). what names bin in errors.
func pauseImage(bin []byte, what string) (string, []byte, error) {
	if err := checkArch(bin, runtime.GOARCH); err != nil {
		return "", nil, fmt.Errorf("%s: %w", what, err)
	}
	img, err := Build([]Layer{{Files: []File{{Path: "/pause", Mode: 0o755, Content: bin}}}}, ImageConfig{
		Config: ocispec.ImageConfig{
			User:       "65535:65535",
			Entrypoint: []string{"/pause"},
		},
	})
	if err != nil {
		return "", nil, fmt.Errorf("build pause image: %w", err)
	}
	name := LocalName("pause", img)
	tar, err := img.OCIArchive(name)
	if err != nil {
		return "", nil, fmt.Errorf("write pause image: %w", err)
	}
	return name, tar, nil
}

// elfArch maps ELF machines to GOARCH for the architectures ketch may be built for.
var elfArch = map[elf.Machine]string{
	elf.EM_X86_64:  "amd64",
	elf.EM_AARCH64: "arm64",
	elf.EM_ARM:     "arm",
	elf.EM_386:     "386",
	elf.EM_RISCV:   "riscv64",
	elf.EM_PPC64:   "ppc64le",
	elf.EM_S390:    "s390x",
}

// checkArch refuses a pause binary built for another architecture than ketch: the image would
// claim the wrong platform and every pod on the node would fail with an exec format error.
func checkArch(bin []byte, goarch string) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("not an ELF executable: %w", err)
	}
	if arch, ok := elfArch[f.Machine]; ok && arch != goarch {
		return fmt.Errorf("built for %s, ketch for %s; rebuild with make", arch, goarch)
	}
	return nil
}
