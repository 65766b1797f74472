package kvload

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"go.etcd.io/etcd/client/v3/kubernetes"

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/bench/stats"
)

// maxCASAttempts bounds retries of one update; hitting it means the datastore keeps
// reporting a revision that never matches, i.e. a bug, not contention.
const maxCASAttempts = 1000

// CAS measures the update path of kube-apiserver's GuaranteedUpdate: an OptimisticPut
// (Txn If ModRevision==rev Then Put Else Get) retried with the revision the Else branch returns.
func CAS(ctx context.Context, env *Env, res *Result) error {
	sz := env.Sizes
	key := func(i int) string { return fmt.Sprintf("/registry/bench/cas/obj-%04d", i) }
	// revs plays the role of the apiserver's watch cache: a shared, mostly current view of each
	// key's revision. Conflicts then come from real races between clients, not from stale
	// private caches, which is what kube-apiserver sees.
	revs := make([]atomic.Int64, sz.CASKeys)

	seed, err := newPool(env.Endpoint, ClientsPerConn)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	err = runCount(ctx, ClientsPerConn, sz.CASKeys, func(ctx context.Context, w, i int) error {
		resp, err := seed.get(w).KV.Put(ctx, key(i), string(env.Payload.value(sz.PutValue, i)))
		if err != nil {
			return fmt.Errorf("put %s: %w", key(i), err)
		}
		revs[i].Store(resp.Header.Revision)
		return nil
	})
	seed.close()
	if err != nil {
		return fmt.Errorf("seed %d keys: %w", sz.CASKeys, err)
	}

	for level, clients := range sz.CASClients {
		label := "CAS update, " + report.Plural(clients, "client")
		p, err := newPool(env.Endpoint, clients)
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		n := sz.CASOps[level]
		r, err := runFixed(ctx, clients, n/10, n, func(ctx context.Context, w, seq int) (int, error) {
			i := rand.IntN(sz.CASKeys)
			k := key(i)
			val := env.Payload.value(sz.PutValue, seq*clients+w)
			expected := revs[i].Load()
			for attempt := 1; ; attempt++ {
				resp, err := p.get(w).OptimisticPut(ctx, k, val, expected, kubernetes.PutOptions{GetOnFailure: true})
				if err != nil {
					return attempt, fmt.Errorf("optimistic put %s: %w", k, err)
				}
				if resp.Succeeded {
					storeMax(&revs[i], resp.Revision)
					return attempt, nil
				}
				if resp.KV == nil {
					return attempt, fmt.Errorf("optimistic put %s failed without returning the current value (Else Get)", k)
				}
				expected = resp.KV.ModRevision
				storeMax(&revs[i], expected)
				if attempt >= maxCASAttempts {
					return attempt, fmt.Errorf("optimistic put %s: still conflicting after %d attempts (last rev %d)", k, attempt, expected)
				}
			}
		})
		p.close()
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		conflictRate := float64(r.requests-r.ops) / float64(r.requests)
		pct := stats.Percentiles(r.lat, 0.5, 0.99)
		res.add(
			RateM(label+": updates/s", r.perSecond(), "updates/s"),
			PercentM(label+": conflict rate", conflictRate),
			LatencyM(label+": update latency p99 (incl. retries)", pct[1]),
		)
		env.Logf("%s: %.0f updates/s, %.1f%% conflicts, p50 %s, p99 %s", label, r.perSecond(), 100*conflictRate, report.Duration(pct[0]), report.Duration(pct[1]))
	}
	return nil
}

// storeMax raises v to rev; responses for one key can arrive out of order across clients.
func storeMax(v *atomic.Int64, rev int64) {
	for {
		cur := v.Load()
		if rev <= cur || v.CompareAndSwap(cur, rev) {
			return
		}
	}
}
