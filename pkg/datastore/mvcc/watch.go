package mvcc

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

const (
	// maxRevsPerResponse and maxBytesPerResponse bound one catch-up response, as etcd bounds its
	// watch batches; a single revision is never split.
	maxRevsPerResponse  = 1000
	maxBytesPerResponse = 2 << 20
)

// Cancel reasons, worded as etcd words them.
var (
	errWatchRangeEmpty  = errors.New("mvcc: watcher range is empty")
	errWatchDuplicateID = errors.New("mvcc: duplicate watch ID provided on the WatchStream")
	// errWatchNegativeRev is etcd's API layer refusing a negative start revision, so it is worded
	// as the gRPC error (rpctypes.ErrCompacted), not as the store's ErrCompacted.
	errWatchNegativeRev = errors.New("etcdserver: mvcc: required revision has been compacted")
)

// WatchRequest asks for the changes to Key (End nil), or to [Key, End) (End empty: no upper
// bound), from StartRev on (0: from the next revision).
type WatchRequest struct {
	ID             int64 // 0 picks a free ID
	Key, End       []byte
	StartRev       int64
	PrevKV         bool
	ProgressNotify bool
	Fragment       bool
	NoPut          bool
	NoDelete       bool
}

// WatchResponse is one message of a watch stream. WatchID -1 with no events is a progress
// notification for the whole stream.
type WatchResponse struct {
	WatchID         int64
	Revision        int64
	Events          []*mvccpb.Event
	Created         bool
	Canceled        bool
	CancelReason    string
	CompactRevision int64
	// Fragment says the watcher accepts a large response split into fragments.
	Fragment bool
}

type watcher struct {
	WatchRequest
	// nextRev is the first revision the watcher has not been given yet.
	nextRev int64
	// sentEvents says events went out since the last progress tick.
	sentEvents bool
}

func (w *watcher) wants(ev *mvccpb.Event) bool {
	if ev.Type == mvccpb.PUT && w.NoPut || ev.Type == mvccpb.DELETE && w.NoDelete {
		return false
	}
	return inRange(ev.Kv.Key, w.Key, w.End)
}

type watchCmd struct {
	create   *WatchRequest
	cancel   int64
	progress bool
}

// WatchStream serves the watchers of one client stream from one goroutine (Run). Each watcher
// pulls the revisions it has not seen from the event log, or from the file if it fell behind,
// so a slow stream only ever delays itself, never the writer or other streams.
type WatchStream struct {
	s                *Store
	send             func(*WatchResponse) error
	progressInterval time.Duration
	cmds             chan watchCmd
	watchers         map[int64]*watcher
	nextID           int64
	// progressAll is a pending RequestProgress, answered once every watcher is synced.
	progressAll bool
}

// NewWatchStream returns a stream that sends its responses with send, from Run's goroutine.
// progressInterval paces progress notifications for watchers that ask for them.
func (s *Store) NewWatchStream(send func(*WatchResponse) error, progressInterval time.Duration) *WatchStream {
	return &WatchStream{
		s: s, send: send, progressInterval: progressInterval,
		cmds: make(chan watchCmd, 64), watchers: make(map[int64]*watcher),
	}
}

func (ws *WatchStream) enqueue(ctx context.Context, c watchCmd) error {
	select {
	case ws.cmds <- c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Watch adds a watcher; the Created response (or a cancellation) follows on the stream.
func (ws *WatchStream) Watch(ctx context.Context, r WatchRequest) error {
	return ws.enqueue(ctx, watchCmd{create: &r})
}

// Cancel removes a watcher; a Canceled response follows if it existed.
func (ws *WatchStream) Cancel(ctx context.Context, id int64) error {
	return ws.enqueue(ctx, watchCmd{cancel: id})
}

// RequestProgress asks for a progress notification (WatchID -1) at the current revision, sent
// once every watcher on the stream has been given everything up to it.
func (ws *WatchStream) RequestProgress(ctx context.Context) error {
	return ws.enqueue(ctx, watchCmd{progress: true})
}

// closed is a channel that is always ready.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Run serves the stream until ctx ends or a send fails.
func (ws *WatchStream) Run(ctx context.Context) error {
	defer func() {
		for _, w := range ws.watchers {
			ws.forget(w)
		}
	}()
	var tick <-chan time.Time
	if ws.progressInterval > 0 {
		// Jitter spreads the ticks of many streams, as etcd does.
		t := time.NewTicker(ws.progressInterval + time.Duration(rand.Int64N(int64(ws.progressInterval)/10+1)))
		defer t.Stop()
		tick = t.C
	}
	for {
		changed := ws.s.events.wait()
		behind, err := ws.deliver()
		if err != nil {
			return err
		}
		if behind {
			// Take commands between catch-up steps, but do not wait for anything.
			changed = closed
		}
		select {
		case <-ctx.Done():
			return nil
		case c := <-ws.cmds:
			if err := ws.handle(c); err != nil {
				return err
			}
		case <-changed:
		case <-tick:
			if err := ws.progressTick(); err != nil {
				return err
			}
		}
	}
}

func (ws *WatchStream) handle(c watchCmd) error {
	switch {
	case c.create != nil:
		return ws.create(c.create)
	case c.progress:
		// etcd answers for the watchers the stream has when it asks: with none, never.
		ws.progressAll = ws.progressAll || len(ws.watchers) > 0
		return nil
	default:
		w, ok := ws.watchers[c.cancel]
		if !ok {
			return nil
		}
		ws.forget(w)
		return ws.send(&WatchResponse{WatchID: w.ID, Canceled: true, Revision: ws.s.Rev()})
	}
}

func (ws *WatchStream) create(r *WatchRequest) error {
	cur := ws.s.Rev()
	refuse := func(err error) error {
		return ws.send(&WatchResponse{WatchID: -1, Created: true, Canceled: true, CancelReason: err.Error(), Revision: cur})
	}
	switch {
	case len(r.End) > 0 && bytes.Compare(r.Key, r.End) >= 0:
		return refuse(errWatchRangeEmpty)
	case r.StartRev < 0:
		return refuse(errWatchNegativeRev)
	}
	if r.ID == 0 {
		for ws.watchers[ws.nextID] != nil {
			ws.nextID++
		}
		r.ID = ws.nextID
		ws.nextID++
	} else if ws.watchers[r.ID] != nil {
		return refuse(errWatchDuplicateID)
	}
	w := &watcher{WatchRequest: *r, nextRev: r.StartRev}
	if r.StartRev == 0 || r.StartRev > cur {
		w.nextRev = max(cur+1, r.StartRev)
	}
	ws.watchers[r.ID] = w
	if r.PrevKV {
		ws.s.prevKVWatchers.Add(1)
	}
	return ws.send(&WatchResponse{WatchID: r.ID, Created: true, Revision: cur})
}

func (ws *WatchStream) forget(w *watcher) {
	delete(ws.watchers, w.ID)
	if w.PrevKV {
		ws.s.prevKVWatchers.Add(-1)
	}
}

// deliver gives every watcher what it has not seen, in bounded steps. behind reports that some
// watcher still has committed revisions left to read.
func (ws *WatchStream) deliver() (behind bool, err error) {
	cur := ws.s.Rev()
	for _, w := range ws.watchers {
		if w.nextRev > cur {
			continue
		}
		more, err := ws.step(w, cur)
		if err != nil {
			return false, err
		}
		behind = behind || more
	}
	if ws.progressAll && ws.synced(cur) {
		ws.progressAll = false
		if err := ws.send(&WatchResponse{WatchID: -1, Revision: cur}); err != nil {
			return false, err
		}
	}
	return behind, nil
}

// synced reports whether every watcher has been given everything up to rev and none waits for a
// future start revision (as etcd counts it, until rev reaches the start revision itself).
func (ws *WatchStream) synced(rev int64) bool {
	for _, w := range ws.watchers {
		if w.nextRev != rev+1 || rev < w.StartRev {
			return false
		}
	}
	return true
}

// step sends one watcher the events of its next revisions up to cur. It reports whether
// revisions up to cur remain.
func (ws *WatchStream) step(w *watcher, cur int64) (more bool, err error) {
	events, upto, compacted, err := ws.collect(w, cur)
	switch {
	case err != nil:
		return false, err
	case compacted > 0:
		ws.forget(w)
		return false, ws.send(&WatchResponse{WatchID: w.ID, Canceled: true, CompactRevision: compacted, Revision: cur})
	case upto < w.nextRev:
		// The event log has not caught up with the published revision yet; its append wakes us.
		return false, nil
	}
	w.nextRev = upto + 1
	if len(events) > 0 {
		w.sentEvents = true
		if err := ws.send(&WatchResponse{WatchID: w.ID, Revision: upto, Events: events, Fragment: w.Fragment}); err != nil {
			return false, err
		}
	}
	return w.nextRev <= cur, nil
}

// collect gathers the watcher's events from its next revision up to at most cur, from the event
// log or else from the file. compacted is set if the watcher needs revisions compaction removed.
func (ws *WatchStream) collect(w *watcher, cur int64) (events []*mvccpb.Event, upto, compacted int64, err error) {
	to := min(cur, w.nextRev+maxRevsPerResponse-1)
	cached, inLog := ws.s.events.read(w.nextRev, to)
	var revs *bolt.Bucket
	needFile := !inLog
	for _, re := range cached {
		needFile = needFile || w.PrevKV && !re.prevKnown
	}
	if needFile {
		ws.s.dbMu.RLock()
		defer ws.s.dbMu.RUnlock()
		tx, err := ws.s.db.Begin(false)
		if err != nil {
			return nil, 0, 0, err
		}
		defer tx.Rollback()
		revs = tx.Bucket(bucketRevs)
	}
	// Checked after the read transaction began: compaction deletes records only after it has
	// published its revision, so a watcher at or above it finds every record it needs.
	c := ws.s.compactRev.Load()
	if w.nextRev < c {
		return nil, 0, c, nil
	}
	if !inLog {
		if first := ws.s.events.first(); first > 0 {
			to = min(to, first-1)
		}
		events, upto, err = readLog(revs, w, to)
		return withoutCompactedPrev(events, c), upto, 0, err
	}
	upto = w.nextRev - 1
	for _, re := range cached {
		for _, ev := range re.events {
			if w.wants(ev) {
				events = append(events, shape(w, ev, re.prevKnown, revs))
			}
		}
		upto = re.rev
	}
	return withoutCompactedPrev(events, c), upto, 0, nil
}

// withoutCompactedPrev drops the previous key-value of events at or below the compacted
// revision c (a watcher starting at c gets those): etcd reads prev_kv as the key at the event's
// revision minus one, which compaction made unreadable.
func withoutCompactedPrev(events []*mvccpb.Event, c int64) []*mvccpb.Event {
	for i, ev := range events {
		if ev.PrevKv != nil && ev.Kv.ModRevision <= c {
			// A copy: the event may be the event log's.
			events[i] = &mvccpb.Event{Type: ev.Type, Kv: ev.Kv}
		}
	}
	return events
}

// shape returns ev as the watcher wants it: with or without its previous key-value.
func shape(w *watcher, ev *mvccpb.Event, prevKnown bool, revs *bolt.Bucket) *mvccpb.Event {
	switch {
	case !w.PrevKV && ev.PrevKv != nil:
		return &mvccpb.Event{Type: ev.Type, Kv: ev.Kv}
	case w.PrevKV && !prevKnown:
		return &mvccpb.Event{Type: ev.Type, Kv: ev.Kv, PrevKv: prevKVByKey(revs, ev.Kv.ModRevision, ev.Kv.Key)}
	}
	return ev
}

// prevKV returns the key-value rec's key had before rev, the revision of rec: etcd's prev_kv is
// the key at the event's revision minus one. So an earlier change of the key in the same
// revision (a put that the transaction then deleted) is skipped.
func prevKV(revs *bolt.Bucket, rec record, rev int64) *mvccpb.KeyValue {
	for rec.prevModRev != 0 {
		at := rec.prevModRev
		prev, err := fetchRecord(revs, revision{main: at, sub: rec.prevSub})
		if err != nil {
			return nil
		}
		if at < rev {
			if prev.tombstone {
				return nil
			}
			return recordToKV(prev, at, false)
		}
		rec = prev
	}
	return nil
}

// prevKVByKey finds the record of key at revision rev (any sub-revision) and returns the value it
// replaced.
func prevKVByKey(revs *bolt.Bucket, rev int64, key []byte) *mvccpb.KeyValue {
	c := revs.Cursor()
	for k, v := c.Seek(revKey(revision{main: rev})); k != nil; k, v = c.Next() {
		r, err := parseRevKey(k)
		if err != nil || r.main != rev {
			return nil
		}
		rec, err := decodeRecord(v)
		if err == nil && bytes.Equal(rec.key, key) {
			return prevKV(revs, rec, rev)
		}
	}
	return nil
}

// readLog reads the watcher's events from the file, from its next revision up to to, stopping
// at a revision boundary once the response is large. It returns the last revision covered.
func readLog(revs *bolt.Bucket, w *watcher, to int64) (events []*mvccpb.Event, upto int64, err error) {
	upto = w.nextRev - 1
	size := 0
	c := revs.Cursor()
	for k, v := c.Seek(revKey(revision{main: w.nextRev})); k != nil; k, v = c.Next() {
		r, err := parseRevKey(k)
		if err != nil {
			return nil, 0, err
		}
		if r.main > to {
			break
		}
		if r.main != upto && upto >= w.nextRev && size >= maxBytesPerResponse {
			return events, upto, nil
		}
		upto = r.main
		rec, err := decodeRecord(v)
		if err != nil {
			return nil, 0, err
		}
		ev := &mvccpb.Event{Type: mvccpb.PUT, Kv: recordToKV(rec, r.main, false)}
		if rec.tombstone {
			ev.Type = mvccpb.DELETE
			ev.Kv = &mvccpb.KeyValue{Key: ev.Kv.Key, ModRevision: r.main}
		}
		if !w.wants(ev) {
			continue
		}
		if w.PrevKV {
			ev.PrevKv = prevKV(revs, rec, r.main)
		}
		size += eventSize(ev)
		events = append(events, ev)
	}
	// Revisions without a record left (compacted away, or their keys were rewritten later)
	// still count as read.
	return events, to, nil
}

// progressTick sends a progress notification to every watcher that asked for them, is synced,
// and got no events since the last tick.
func (ws *WatchStream) progressTick() error {
	cur := ws.s.Rev()
	for _, w := range ws.watchers {
		sent := w.sentEvents
		w.sentEvents = false
		if !w.ProgressNotify || sent || w.nextRev != cur+1 || cur < w.StartRev {
			continue
		}
		if err := ws.send(&WatchResponse{WatchID: w.ID, Revision: cur}); err != nil {
			return err
		}
	}
	return nil
}
