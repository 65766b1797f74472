package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
)

const (
	// dnsName always exists; fully qualified, so that no search domain is tried first.
	dnsName = "kubernetes.default.svc.cluster.local."
	dnsPod  = "nb-dns"
)

// dnsPhase runs a netbench pod on the node and times lookups of dnsName from it through the
// cluster DNS.
func (b *addonsBench) dnsPhase(ctx context.Context, dirs *nodeDirs, cs kubernetes.Interface, tarball string) ([]time.Duration, error) {
	if err := importImage(ctx, b.srv.opts.ketchBin, dirs.socket(), tarball); err != nil {
		return nil, err
	}
	if _, err := startNetPods(ctx, cs, netPod(dnsPod, benchNodeName, "sleep")); err != nil {
		return nil, err
	}
	out, err := runKubectl(ctx, b.srv.opts.ketchBin, filepath.Join(dirs.data, "admin.yaml"), 2*time.Minute,
		"exec", "-n", netNamespace, dnsPod, "--", "/netbench", "dns", dnsName, strconv.Itoa(b.sizes.lookups))
	if err != nil {
		return nil, err
	}
	lat, err := parseMicros(out)
	if err != nil {
		return nil, fmt.Errorf("netbench dns: %w", err)
	}
	if len(lat) != b.sizes.lookups {
		return nil, fmt.Errorf("netbench dns printed %d latencies, want %d", len(lat), b.sizes.lookups)
	}
	p := percentiles(slices.Clone(lat), 0.5, 0.99, 1)
	b.logf("%d lookups of %s: p50 %s, p99 %s, max %s", len(lat), dnsName, fmtDuration(p[0]), fmtDuration(p[1]), fmtDuration(p[2]))
	return lat, nil
}

// parseMicros reads latencies in microseconds, one per line, as netbench prints them.
func parseMicros(out string) ([]time.Duration, error) {
	var d []time.Duration
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		us, err := strconv.ParseFloat(strings.TrimSpace(line), 64)
		if err != nil || us < 0 {
			return nil, fmt.Errorf("line %d: %q is not a latency in microseconds", i+1, line)
		}
		d = append(d, time.Duration(us*float64(time.Microsecond)))
	}
	return d, nil
}
