package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
)

const putPrefix = "/registry/bench/put/"

// putPhase measures plain puts of distinct keys, so no request ever waits on another's key.
func putPhase(ctx context.Context, env *phaseEnv, res *targetResult) error {
	sz := env.sizes
	for level, clients := range sz.putClients {
		label := "put, " + plural(clients, "client")
		p, err := newPool(env.srv.endpoint, clients)
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		n := sz.putOps[level]
		r, err := runFixed(ctx, clients, n/10, n, func(ctx context.Context, w, seq int) (int, error) {
			key := fmt.Sprintf("%sc%d/%09d", putPrefix, clients, seq)
			_, err := p.get(w).KV.Put(ctx, key, string(env.payload.value(sz.putValue, seq*clients+w)))
			return 1, err
		})
		p.close()
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		pct := percentiles(r.lat, 0.5, 0.99)
		res.add(
			rateM(label+": throughput", r.perSecond(), "ops/s"),
			latencyM(label+": latency p50", pct[0]),
			latencyM(label+": latency p99", pct[1]),
		)
		env.logf("%s: %.0f ops/s, p50 %s, p99 %s", label, r.perSecond(), fmtDuration(pct[0]), fmtDuration(pct[1]))
	}
	// Deleting the keys leaves the live data set of the later phases and of the idle memory
	// sample the same as without this phase.
	cli, err := newClient(env.srv.endpoint)
	if err != nil {
		return fmt.Errorf("cleanup client: %w", err)
	}
	defer cli.Close()
	resp, err := cli.KV.Delete(ctx, putPrefix, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("delete put keys: %w", err)
	}
	env.logf("put: deleted %d keys written by this phase", resp.Deleted)
	// Compact away the deleted keys now, as kube-apiserver eventually would, so that neither
	// target spends the next measured phase cleaning up after this one: etcd never compacts on
	// its own, while ketch caps its history.
	if _, err := cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		return fmt.Errorf("compact after deleting the put keys: %w", err)
	}
	return nil
}

// maxCASAttempts bounds retries of one update; hitting it means the datastore keeps
// reporting a revision that never matches, i.e. a bug, not contention.
const maxCASAttempts = 1000

// casPhase measures the update path of kube-apiserver's GuaranteedUpdate: an OptimisticPut
// (Txn If ModRevision==rev Then Put Else Get) retried with the revision the Else branch returns.
func casPhase(ctx context.Context, env *phaseEnv, res *targetResult) error {
	sz := env.sizes
	key := func(i int) string { return fmt.Sprintf("/registry/bench/cas/obj-%04d", i) }
	// revs plays the role of the apiserver's watch cache: a shared, mostly current view of each
	// key's revision. Conflicts then come from real races between clients, not from stale
	// private caches, which is what kube-apiserver sees.
	revs := make([]atomic.Int64, sz.casKeys)

	seed, err := newPool(env.srv.endpoint, clientsPerConn)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	err = runCount(ctx, clientsPerConn, sz.casKeys, func(ctx context.Context, w, i int) error {
		resp, err := seed.get(w).KV.Put(ctx, key(i), string(env.payload.value(sz.putValue, i)))
		if err != nil {
			return fmt.Errorf("put %s: %w", key(i), err)
		}
		revs[i].Store(resp.Header.Revision)
		return nil
	})
	seed.close()
	if err != nil {
		return fmt.Errorf("seed %d keys: %w", sz.casKeys, err)
	}

	for level, clients := range sz.casClients {
		label := "CAS update, " + plural(clients, "client")
		p, err := newPool(env.srv.endpoint, clients)
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		n := sz.casOps[level]
		r, err := runFixed(ctx, clients, n/10, n, func(ctx context.Context, w, seq int) (int, error) {
			i := rand.IntN(sz.casKeys)
			k := key(i)
			val := env.payload.value(sz.putValue, seq*clients+w)
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
		pct := percentiles(r.lat, 0.5, 0.99)
		res.add(
			rateM(label+": updates/s", r.perSecond(), "updates/s"),
			percentM(label+": conflict rate", conflictRate),
			latencyM(label+": update latency p99 (incl. retries)", pct[1]),
		)
		env.logf("%s: %.0f updates/s, %.1f%% conflicts, p50 %s, p99 %s", label, r.perSecond(), 100*conflictRate, fmtDuration(pct[0]), fmtDuration(pct[1]))
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
