// Command ketch-addons is the program inside the addon image that every ketch node builds for
// itself (localhost/ketch/addons): one static binary whose first argument picks the addon role
// a pod runs. It is a separate program from ketch because each addon pod pays for the Go
// initialisation of everything linked into its binary: the full ketch binary touches about
// 100 MiB of its own pages before doing anything, this one a third of that (docs/addons.md).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/addons/coredns"
	"github.com/ketch-k8s/ketch/pkg/addons/dashboard"
	"github.com/ketch-k8s/ketch/pkg/addons/localpath"
	"github.com/ketch-k8s/ketch/pkg/addons/metricsserver"
	"github.com/ketch-k8s/ketch/pkg/addons/servicelb"
)

// roles maps the first argument to the role's entry point, which gets the remaining arguments.
var roles = map[string]func(ctx context.Context, args []string) error{
	"coredns":                coredns.Main,
	"dashboard":              dashboard.Main,
	"metrics-server":         metricsserver.Main,
	"servicelb":              servicelb.Main,
	"local-path-provisioner": localpath.ProvisionerMain,
	"local-path-helper":      localpath.HelperMain,
}

func main() {
	if len(os.Args) < 2 || roles[os.Args[1]] == nil {
		fmt.Fprintf(os.Stderr, "usage: ketch-addons ROLE [ARGS...]\nroles: %v\n", roleNames())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := roles[os.Args[1]](ctx, os.Args[2:])
	stop()
	klog.Flush()
	if err != nil {
		fmt.Fprintf(os.Stderr, "ketch-addons %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func roleNames() []string {
	names := make([]string, 0, len(roles))
	for n := range roles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
