package robustness

import (
	"context"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Watcher records a prefix watch with prev_kv from StartRev on. A reflector watcher cancels its
// watch whenever the datastore is killed and re-watches from the last seen revision + 1 once it
// is back, as the apiserver's reflector does; otherwise it relies on the etcd client resuming
// the stream by itself, and asks for progress notifications now and then.
type Watcher struct {
	name      string
	client    *clientv3.Client
	clock     *Clock
	faults    *Faults
	reflector bool

	hist    WatchHistory
	lastRev atomic.Int64 // revision of the last event received
}

// NewWatcher prepares a watcher; call Run to start it.
func NewWatcher(name string, client *clientv3.Client, clock *Clock, faults *Faults, startRev int64, reflector bool) *Watcher {
	w := &Watcher{name: name, client: client, clock: clock, faults: faults, reflector: reflector,
		hist: WatchHistory{Name: name, StartRev: startRev}}
	w.lastRev.Store(startRev - 1)
	return w
}

// LastRev is the revision of the last event received so far.
func (w *Watcher) LastRev() int64 { return w.lastRev.Load() }

// Run watches until ctx ends and returns what it received.
func (w *Watcher) Run(ctx context.Context) WatchHistory {
	if !w.reflector {
		go w.requestProgress(ctx)
	}
	for stream := 0; ; stream++ {
		e := w.faults.current()
		select {
		case <-e.up:
		case <-ctx.Done():
			return w.hist
		}
		w.watch(ctx, stream, e.down)
		// Do not spin if the datastore keeps ending the watch; Validate reports why it did.
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return w.hist
		}
	}
}

// watch runs one Watch call until its channel closes, ctx ends, or (for a reflector) the
// datastore is killed.
func (w *Watcher) watch(ctx context.Context, stream int, down <-chan struct{}) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !w.reflector {
		down = nil
	}
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithRev(w.LastRev() + 1)}
	if w.reflector {
		opts = append(opts, clientv3.WithProgressNotify())
	}
	wch := w.client.Watch(clientv3.WithRequireLeader(wctx), keyPrefix, opts...)
	for {
		select {
		case resp, ok := <-wch:
			if !ok {
				return
			}
			w.record(wctx, stream, resp)
			if resp.Canceled {
				return
			}
		case <-down:
			// Drain what was already delivered: those events are real and must be contiguous.
			cancel()
			for resp := range wch {
				w.record(wctx, stream, resp)
			}
			return
		}
	}
}

func (w *Watcher) record(wctx context.Context, stream int, resp clientv3.WatchResponse) {
	r := WatchResponse{
		// A cancellation we asked for says nothing about the datastore.
		ByClient:   resp.Canceled && wctx.Err() != nil,
		Time:       w.clock.Now(),
		Stream:     stream,
		Rev:        resp.Header.Revision,
		Progress:   resp.IsProgressNotify(),
		Canceled:   resp.Canceled,
		CompactRev: resp.CompactRevision,
	}
	if err := resp.Err(); err != nil {
		r.Err = err.Error()
	}
	for _, ev := range resp.Events {
		e := WatchEvent{Delete: ev.Type == mvccpb.DELETE, KV: toKV(ev.Kv)}
		if ev.PrevKv != nil {
			p := toKV(ev.PrevKv)
			e.PrevKV = &p
		}
		r.Events = append(r.Events, e)
		w.lastRev.Store(ev.Kv.ModRevision)
	}
	w.hist.Responses = append(w.hist.Responses, r)
}

// requestProgress asks for progress notifications, which the apiserver's watch cache relies on
// for consistent reads; errors are ignored because the datastore may be down.
func (w *Watcher) requestProgress(ctx context.Context) {
	t := time.NewTicker(300 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// The request must carry the same metadata as the watch, or the client sends it on a
			// different gRPC stream that has no watchers.
			rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), time.Second)
			_ = w.client.RequestProgress(rctx)
			cancel()
		}
	}
}
