package podnet

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/bench/stats"
	"github.com/ketch-k8s/ketch/internal/harness"
)

const (
	// DNSName always exists; fully qualified, so that no search domain is tried first.
	DNSName = "kubernetes.default.svc.cluster.local."
	dnsPod  = "nb-dns"
)

// DNS runs a netbench pod on node and times lookups of DNSName from it through the cluster
// DNS. The image must be on the node.
func DNS(ctx context.Context, k harness.Ketch, cs kubernetes.Interface, node string, lookups int, logf func(string, ...any)) ([]time.Duration, error) {
	if _, err := StartPods(ctx, cs, Pod(dnsPod, node, "sleep")); err != nil {
		return nil, err
	}
	out, err := netbench(ctx, k, 2*time.Minute, dnsPod, "dns", DNSName, strconv.Itoa(lookups))
	if err != nil {
		return nil, err
	}
	lat, err := ParseMicros(out)
	if err != nil {
		return nil, fmt.Errorf("netbench dns: %w", err)
	}
	if len(lat) != lookups {
		return nil, fmt.Errorf("netbench dns printed %d latencies, want %d", len(lat), lookups)
	}
	p := stats.Percentiles(slices.Clone(lat), 0.5, 0.99, 1)
	logf("%d lookups of %s: p50 %s, p99 %s, max %s", len(lat), DNSName, report.Duration(p[0]), report.Duration(p[1]), report.Duration(p[2]))
	return lat, nil
}

// ParseMicros reads latencies in microseconds, one per line, as netbench prints them.
func ParseMicros(out string) ([]time.Duration, error) {
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
