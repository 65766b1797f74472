package kvload

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/client/v3/kubernetes"

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/bench/stats"
)

// List measures a paginated LIST the way kube-apiserver issues it against etcd.
func List(ctx context.Context, env *Env, res *Result) error {
	sz := env.Sizes
	const prefix = "/registry/bench/list/"
	const seeders = 64

	seed, err := newPool(env.Endpoint, seeders)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	err = runCount(ctx, seeders, sz.ListKeys, func(ctx context.Context, w, i int) error {
		// Spread objects over namespaces like real k8s keys (/registry/<type>/<ns>/<name>).
		key := fmt.Sprintf("%sns-%02d/obj-%06d", prefix, i%20, i)
		_, err := seed.get(w).KV.Put(ctx, key, string(env.Payload.value(sz.ListValue, i)))
		return err
	})
	seed.close()
	if err != nil {
		return fmt.Errorf("seed %d keys: %w", sz.ListKeys, err)
	}

	cli, err := NewClient(env.Endpoint)
	if err != nil {
		return fmt.Errorf("list client: %w", err)
	}
	defer cli.Close()

	// One unmeasured list first: the first read of freshly written data is not representative.
	var discard []time.Duration
	if err := listAll(ctx, cli, prefix, sz.ListLimit, sz.ListKeys, &discard); err != nil {
		return fmt.Errorf("warm-up list: %w", err)
	}
	var full, pages []time.Duration
	deadline := time.Now().Add(sz.ListMaxTime)
	for run := 0; run < sz.ListRuns; run++ {
		if run >= 3 && time.Now().After(deadline) {
			env.Logf("list: stopping after %d full lists (time cap %v)", run, sz.ListMaxTime)
			break
		}
		start := time.Now()
		if err := listAll(ctx, cli, prefix, sz.ListLimit, sz.ListKeys, &pages); err != nil {
			return fmt.Errorf("list %d: %w", run, err)
		}
		full = append(full, time.Since(start))
	}
	runs := len(full)
	fp := stats.Percentiles(full, 0.5, 0.99)
	pp := stats.Percentiles(pages, 0.5, 0.99)
	label := fmt.Sprintf("list %s × %s, limit %d", report.Commas(sz.ListKeys), report.Bytes(float64(sz.ListValue)), sz.ListLimit)
	res.add(
		LatencyM(label+": full list p50", fp[0]),
		LatencyM(label+": full list p99", fp[1]),
		LatencyM(label+": one page p50", pp[0]),
		LatencyM(label+": one page p99", pp[1]),
	)
	res.Notes = append(res.Notes, fmt.Sprintf("list: %d full lists, %d pages measured", runs, len(pages)))
	env.Logf("%s: full p50 %s p99 %s, page p50 %s p99 %s (%d lists)", label, report.Duration(fp[0]), report.Duration(fp[1]), report.Duration(pp[0]), report.Duration(pp[1]), runs)
	return nil
}

// listAll reads every key under prefix page by page, as kube-apiserver's GetList does: the
// first page at the current revision, later pages pinned to that revision and starting just
// after the previous page's last key; more pages follow while Count exceeds what was returned.
func listAll(ctx context.Context, cli *kubernetes.Client, prefix string, limit int64, want int, pageLat *[]time.Duration) error {
	var rev int64
	cont := ""
	got := 0
	maxPages := want/int(limit) + 2
	for page := 0; ; page++ {
		if page > maxPages {
			return fmt.Errorf("more than %d pages for %d keys: Count or limit handling is wrong", maxPages, want)
		}
		start := time.Now()
		resp, err := cli.List(ctx, prefix, kubernetes.ListOptions{Revision: rev, Limit: limit, Continue: cont})
		if err != nil {
			return fmt.Errorf("page %d: %w", page, err)
		}
		*pageLat = append(*pageLat, time.Since(start))
		if rev == 0 {
			rev = resp.Revision
		}
		got += len(resp.Kvs)
		if len(resp.Kvs) == 0 || int64(len(resp.Kvs)) >= resp.Count {
			break
		}
		cont = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	if got != want {
		return fmt.Errorf("listed %d keys, want %d", got, want)
	}
	return nil
}
