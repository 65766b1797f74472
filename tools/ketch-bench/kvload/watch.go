package kvload

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/bench/stats"
)

// Watch measures how long an update takes to reach every watcher of its prefix: the time
// from issuing the Put until each watcher has the event, so it includes the commit.
func Watch(ctx context.Context, env *Env, res *Result) error {
	sz := env.Sizes
	const prefix = "/registry/bench/watch/"
	objKey := func(i int) string { return fmt.Sprintf("%sobj-%03d", prefix, i%sz.WatchObjects) }

	writer, err := NewClient(env.Endpoint)
	if err != nil {
		return fmt.Errorf("writer client: %w", err)
	}
	defer writer.Close()
	// Seed the objects so every measured event is an update carrying a prev_kv, as almost all
	// events kube-apiserver watches are.
	var rev int64
	for i := range sz.WatchObjects {
		resp, err := writer.KV.Put(ctx, objKey(i), string(env.Payload.value(sz.PutValue, i)))
		if err != nil {
			return fmt.Errorf("seed %s: %w", objKey(i), err)
		}
		rev = resp.Header.Revision
	}

	p, err := newPool(env.Endpoint, sz.Watchers)
	if err != nil {
		return fmt.Errorf("watch clients: %w", err)
	}
	defer p.close()
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	base := time.Now()
	created := make(chan struct{}, sz.Watchers)
	delivered := make(chan struct{}, sz.Watchers)
	errc := make(chan error, sz.Watchers)
	lats := make([][]time.Duration, sz.Watchers)
	for w := range sz.Watchers {
		// Same options as kube-apiserver's watcher: require a leader, start right after a known
		// revision, include the previous value. Created-notify lets us start writing only once
		// every watch is registered, so no event is measured as catch-up.
		wch := p.get(w).Watch(clientv3.WithRequireLeader(wctx), prefix,
			clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
		wg.Go(func() {
			next := 0
			for resp := range wch {
				received := time.Since(base)
				if err := resp.Err(); err != nil {
					if wctx.Err() == nil {
						errc <- fmt.Errorf("watcher %d: %w", w, err)
					}
					return
				}
				if resp.Created {
					created <- struct{}{}
				}
				for _, ev := range resp.Events {
					if err := checkEvent(ev, next); err != nil {
						errc <- fmt.Errorf("watcher %d: %w", w, err)
						return
					}
					if next >= sz.WatchWarmup {
						lats[w] = append(lats[w], received-stampSent(ev.Kv.Value))
					}
					next++
					select {
					case delivered <- struct{}{}:
					case <-wctx.Done():
						return
					}
				}
			}
			if wctx.Err() == nil {
				errc <- fmt.Errorf("watcher %d: watch channel closed by the server", w)
			}
		})
	}
	if err := awaitN(ctx, sz.Watchers, created, errc, 30*time.Second, "watch creation"); err != nil {
		return err
	}

	// One event in flight at a time: this measures delivery latency, not how a backlog drains.
	total := sz.WatchWarmup + sz.WatchEvents
	deadline := time.Now().Add(sz.WatchMaxTime)
	sent := 0
	for seq := range total {
		if seq >= sz.WatchWarmup+sz.WatchEvents/10 && time.Now().After(deadline) {
			env.Logf("watch: stopping after %d events (time cap %v)", seq, sz.WatchMaxTime)
			break
		}
		val := stampValue(env.Payload.value(sz.PutValue, seq), seq, time.Since(base))
		if _, err := writer.KV.Put(ctx, objKey(seq), string(val)); err != nil {
			return fmt.Errorf("put event %d: %w", seq, err)
		}
		if err := awaitN(ctx, sz.Watchers, delivered, errc, 10*time.Second, fmt.Sprintf("delivery of event %d", seq)); err != nil {
			return err
		}
		sent++
	}

	// Stop the watchers before reading what they recorded.
	cancel()
	wg.Wait()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	pct := stats.Percentiles(all, 0.5, 0.99)
	label := fmt.Sprintf("watch, %d watchers", sz.Watchers)
	res.add(LatencyM(label+": delivery latency p50", pct[0]), LatencyM(label+": delivery latency p99", pct[1]))
	res.Notes = append(res.Notes, fmt.Sprintf("watch: %d events measured, %d deliveries", sent-sz.WatchWarmup, len(all)))
	env.Logf("%s: p50 %s, p99 %s over %d deliveries", label, report.Duration(pct[0]), report.Duration(pct[1]), len(all))
	return nil
}

// awaitN waits for n signals on ch, failing early on a watcher error or after timeout.
func awaitN(ctx context.Context, n int, ch <-chan struct{}, errc <-chan error, timeout time.Duration, what string) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for i := range n {
		select {
		case <-ch:
		case err := <-errc:
			return fmt.Errorf("%s: %w", what, err)
		case <-timer.C:
			return fmt.Errorf("%s: only %d of %d watchers after %v", what, i, n, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// checkEvent verifies what the latency numbers rely on: every watcher sees every update, in
// order, with its previous value.
func checkEvent(ev *clientv3.Event, want int) error {
	if ev.Type != mvccpb.PUT {
		return fmt.Errorf("event %d: type %v, want PUT", want, ev.Type)
	}
	if ev.PrevKv == nil || string(ev.PrevKv.Key) != string(ev.Kv.Key) {
		return fmt.Errorf("event %d on %s: missing prev_kv", want, ev.Kv.Key)
	}
	if len(ev.Kv.Value) < 16 {
		return fmt.Errorf("event %d on %s: value of %d bytes is not a bench value", want, ev.Kv.Key, len(ev.Kv.Value))
	}
	if got := int(binary.BigEndian.Uint64(ev.Kv.Value)); got != want {
		return fmt.Errorf("got event %d, want %d (lost or reordered event)", got, want)
	}
	return nil
}

// stampValue prefixes a copy of payload with the event's sequence number and send time. The
// send time travels in the value so watchers need no shared state with the writer.
func stampValue(payload []byte, seq int, sent time.Duration) []byte {
	v := append([]byte(nil), payload...)
	binary.BigEndian.PutUint64(v[0:8], uint64(seq))
	binary.BigEndian.PutUint64(v[8:16], uint64(sent))
	return v
}

func stampSent(v []byte) time.Duration { return time.Duration(binary.BigEndian.Uint64(v[8:16])) }
