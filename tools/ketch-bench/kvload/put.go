package kvload

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/bench/stats"
)

const putPrefix = "/registry/bench/put/"

// Put measures plain puts of distinct keys, so no request ever waits on another's key.
func Put(ctx context.Context, env *Env, res *Result) error {
	sz := env.Sizes
	for level, clients := range sz.PutClients {
		label := "put, " + report.Plural(clients, "client")
		p, err := newPool(env.Endpoint, clients)
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		n := sz.PutOps[level]
		r, err := runFixed(ctx, clients, n/10, n, func(ctx context.Context, w, seq int) (int, error) {
			key := fmt.Sprintf("%sc%d/%09d", putPrefix, clients, seq)
			_, err := p.get(w).KV.Put(ctx, key, string(env.Payload.value(sz.PutValue, seq*clients+w)))
			return 1, err
		})
		p.close()
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		pct := stats.Percentiles(r.lat, 0.5, 0.99)
		res.add(
			RateM(label+": throughput", r.perSecond(), "ops/s"),
			LatencyM(label+": latency p50", pct[0]),
			LatencyM(label+": latency p99", pct[1]),
		)
		env.Logf("%s: %.0f ops/s, p50 %s, p99 %s", label, r.perSecond(), report.Duration(pct[0]), report.Duration(pct[1]))
	}
	// Deleting the keys leaves the live data set of the later phases and of the idle memory
	// sample the same as without this phase.
	cli, err := NewClient(env.Endpoint)
	if err != nil {
		return fmt.Errorf("cleanup client: %w", err)
	}
	defer cli.Close()
	resp, err := cli.KV.Delete(ctx, putPrefix, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("delete put keys: %w", err)
	}
	env.Logf("put: deleted %d keys written by this phase", resp.Deleted)
	// Compact away the deleted keys now, as kube-apiserver eventually would, so that neither
	// target spends the next measured phase cleaning up after this one: etcd never compacts on
	// its own, while ketch caps its history.
	if _, err := cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		return fmt.Errorf("compact after deleting the put keys: %w", err)
	}
	return nil
}
