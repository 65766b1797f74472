// Package coredns is the cluster DNS role of the addon image: upstream CoreDNS, linked with only
// the plugins ketch's Corefile uses (manifests/coredns.yaml), so the image carries no cloud
// backends or plugins nobody configured.
package coredns

import (
	"context"
	"os"

	// Each import registers one plugin with CoreDNS; their order in a server block comes from
	// CoreDNS's own directive list, not from here.
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"

	"github.com/coredns/coredns/coremain"
)

// Main runs CoreDNS with its own command line (-conf, -plugins, ...). CoreDNS parses the
// process's arguments and handles SIGTERM itself (lame-duck shutdown, then exit), so ctx is not
// consulted.
func Main(_ context.Context, args []string) error {
	os.Args = append([]string{"coredns"}, args...)
	coremain.Run()
	return nil
}
