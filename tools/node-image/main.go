// Command node-image assembles the build context of the node image (see internal/nodeimage):
//
//	go run ./tools/node-image --ketch bin/ketch --arch amd64 --sysroot / --out dist/image/amd64
//
// then `docker build -f Dockerfile dist/image/amd64` (make image does both).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ketch-k8s/ketch/internal/nodeimage"
)

func main() {
	var o nodeimage.Options
	flag.StringVar(&o.Ketch, "ketch", "bin/ketch", "the ketch binary for the image's architecture")
	flag.StringVar(&o.Arch, "arch", "amd64", "the image's architecture: amd64, arm64 or arm")
	flag.StringVar(&o.Sysroot, "sysroot", "/", "a Debian root file system of that architecture with iptables and mount (scripts/image-sysroot.sh)")
	flag.StringVar(&o.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "the CA bundle to ship")
	flag.StringVar(&o.Out, "out", "", "the build context directory to write (its rootfs/ is replaced)")
	flag.Parse()
	if o.Out == "" {
		fmt.Fprintln(os.Stderr, "node-image: --out is required")
		os.Exit(2)
	}
	if err := nodeimage.Assemble(o); err != nil {
		fmt.Fprintf(os.Stderr, "node-image: %v\n", err)
		os.Exit(1)
	}
	size, err := nodeimage.Size(filepath.Join(o.Out, "rootfs"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "node-image: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %.1f MiB\n", filepath.Join(o.Out, "rootfs"), float64(size)/(1<<20))
}
