package mvcc

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// testStream runs a WatchStream and records what it sends.
type testStream struct {
	ws     *WatchStream
	cancel context.CancelFunc
	out    chan *WatchResponse
	done   chan error
}

func startStream(t testing.TB, s *Store, progress time.Duration, buffer int) *testStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testStream{cancel: cancel, out: make(chan *WatchResponse, buffer), done: make(chan error, 1)}
	ts.ws = s.NewWatchStream(func(r *WatchResponse) error {
		select {
		case ts.out <- r:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, progress)
	go func() { ts.done <- ts.ws.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-ts.done })
	return ts
}

func (ts *testStream) next(t testing.TB) *WatchResponse {
	t.Helper()
	select {
	case r := <-ts.out:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no watch response within 5s")
		return nil
	}
}

func (ts *testStream) watch(t testing.TB, r WatchRequest) int64 {
	t.Helper()
	if err := ts.ws.Watch(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	resp := ts.next(t)
	if !resp.Created || resp.Canceled {
		t.Fatalf("watch not created: %+v", resp)
	}
	return resp.WatchID
}

// watchAll delivers, on the returned channel, the events of the next response of a watch on
// every key from rev.
func watchAll(t testing.TB, s *Store, rev int64) <-chan []*mvccpb.Event {
	t.Helper()
	ts := startStream(t, s, 0, 16)
	ts.watch(t, WatchRequest{Key: []byte{0}, End: []byte{}, StartRev: rev})
	ch := make(chan []*mvccpb.Event, 1)
	go func() { ch <- (<-ts.out).Events }()
	return ch
}

func TestWatchHistoryAndLive(t *testing.T) {
	s := openTest(t, Options{})
	put(t, s, "a", "1") // 2
	put(t, s, "b", "1") // 3
	put(t, s, "a", "2") // 4
	del(t, s, "a")      // 5
	// From the file: the event log of a freshly opened store is empty.
	s = reopen(t, s)
	ts := startStream(t, s, 0, 16)
	id := ts.watch(t, WatchRequest{Key: []byte("a"), StartRev: 2, PrevKV: true})
	r := ts.next(t)
	if r.WatchID != id || len(r.Events) != 3 {
		t.Fatalf("history: %+v", r)
	}
	if e := r.Events[1]; e.Type != mvccpb.PUT || string(e.PrevKv.Value) != "1" || e.Kv.ModRevision != 4 || e.Kv.Version != 2 {
		t.Fatalf("second event: %v", e)
	}
	if e := r.Events[2]; e.Type != mvccpb.DELETE || e.Kv.ModRevision != 5 || string(e.PrevKv.Value) != "2" {
		t.Fatalf("delete event: %v", e)
	}
	// Live: a new revision arrives alone, prev_kv included.
	put(t, s, "a", "3")
	r = ts.next(t)
	if len(r.Events) != 1 || r.Events[0].Kv.ModRevision != 6 || r.Events[0].PrevKv != nil || r.Revision != 6 {
		t.Fatalf("live event: %+v", r)
	}
	put(t, s, "a", "4")
	if r = ts.next(t); string(r.Events[0].PrevKv.Value) != "3" {
		t.Fatalf("live prev_kv: %v", r.Events[0])
	}
}

func TestWatchFiltersAndRanges(t *testing.T) {
	s := openTest(t, Options{})
	ts := startStream(t, s, 0, 16)
	noDel := ts.watch(t, WatchRequest{Key: []byte("k/"), End: []byte("k0"), NoDelete: true})
	noPut := ts.watch(t, WatchRequest{Key: []byte("k/"), End: []byte("k0"), NoPut: true})
	put(t, s, "k/1", "v")
	put(t, s, "other", "v")
	del(t, s, "k/1")
	got := map[int64][]mvccpb.Event_EventType{}
	for len(got[noDel])+len(got[noPut]) < 2 {
		r := ts.next(t)
		for _, e := range r.Events {
			got[r.WatchID] = append(got[r.WatchID], e.Type)
		}
	}
	if fmt.Sprint(got[noDel]) != "[PUT]" || fmt.Sprint(got[noPut]) != "[DELETE]" {
		t.Fatalf("filtered events: %v", got)
	}
	if err := ts.ws.Watch(bg, WatchRequest{Key: []byte("b"), End: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	if r := ts.next(t); !r.Created || !r.Canceled || r.CancelReason == "" {
		t.Fatalf("empty range: %+v", r)
	}
}

func TestWatchCompacted(t *testing.T) {
	s := openTest(t, Options{})
	for i := 0; i < 5; i++ {
		put(t, s, "a", fmt.Sprint(i))
	}
	if _, err := s.Compact(bg, &pb.CompactionRequest{Revision: 4}); err != nil {
		t.Fatal(err)
	}
	ts := startStream(t, s, 0, 16)
	if err := ts.ws.Watch(bg, WatchRequest{Key: []byte("a"), StartRev: 2}); err != nil {
		t.Fatal(err)
	}
	if r := ts.next(t); !r.Created || r.Canceled {
		t.Fatalf("first response: %+v", r)
	}
	if r := ts.next(t); !r.Canceled || r.CompactRevision != 4 {
		t.Fatalf("second response: %+v", r)
	}
	// At the compacted revision itself, history is still complete.
	ts.watch(t, WatchRequest{Key: []byte("a"), StartRev: 4})
	if r := ts.next(t); len(r.Events) != 3 || r.Events[0].Kv.ModRevision != 4 {
		t.Fatalf("watch from the compacted revision: %+v", r)
	}
}

func TestWatchProgress(t *testing.T) {
	s := openTest(t, Options{})
	ts := startStream(t, s, 200*time.Millisecond, 16)
	id := ts.watch(t, WatchRequest{Key: []byte("a"), ProgressNotify: true})
	put(t, s, "b", "1")
	// A progress notification for the watcher, at the current revision, with no events.
	r := ts.next(t)
	if r.WatchID != id || len(r.Events) != 0 || r.Revision != 2 {
		t.Fatalf("progress notify: %+v", r)
	}
	// RequestProgress is answered for the whole stream with watch ID -1.
	put(t, s, "a", "1")
	// The next progress notification may come first: the ticker does not wait for the put.
	for r = ts.next(t); len(r.Events) == 0 && r.Revision == 2; r = ts.next(t) {
	}
	if len(r.Events) != 1 {
		t.Fatalf("event: %+v", r)
	}
	if err := ts.ws.RequestProgress(bg); err != nil {
		t.Fatal(err)
	}
	for {
		r = ts.next(t)
		if r.WatchID == -1 {
			break
		}
	}
	if r.Revision != 3 || len(r.Events) != 0 {
		t.Fatalf("requested progress: %+v", r)
	}
}

// TestSlowWatcher: a stream that does not read stalls neither the writer nor other streams, and
// gets every event in order once it reads again.
func TestSlowWatcher(t *testing.T) {
	s := openTest(t, Options{EventCacheBytes: 16 << 10})
	slow := startStream(t, s, 0, 0)
	slow.watch(t, WatchRequest{Key: []byte("k"), End: []byte{}})
	fast := startStream(t, s, 0, 1024)
	fast.watch(t, WatchRequest{Key: []byte("k"), End: []byte{}})
	const n = 300
	var fastEvents []*mvccpb.Event
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for len(fastEvents) < n {
			fastEvents = append(fastEvents, fast.next(t).Events...)
		}
	}()
	start := time.Now()
	value := make([]byte, 512) // several times the event cache over the run
	for i := 0; i < n; i++ {
		if _, err := s.Put(bg, &pb.PutRequest{Key: []byte(fmt.Sprintf("k%04d", i)), Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	t.Logf("%d writes and the fast watcher's events in %v while the slow one read nothing", n, time.Since(start))
	var slowEvents []*mvccpb.Event
	for len(slowEvents) < n {
		slowEvents = append(slowEvents, slow.next(t).Events...)
	}
	for i, e := range slowEvents {
		if e.Kv.ModRevision != int64(i+2) || string(e.Kv.Key) != fmt.Sprintf("k%04d", i) {
			t.Fatalf("slow watcher event %d: %v", i, e.Kv)
		}
	}
}

// TestWatchHugeRevision: a revision too large for the event cache is read from the file, whole.
func TestWatchHugeRevision(t *testing.T) {
	s := openTest(t, Options{EventCacheBytes: 4 << 10})
	ts := startStream(t, s, 0, 16)
	ts.watch(t, WatchRequest{Key: []byte("k"), End: []byte{}, PrevKV: true})
	var ops []*pb.RequestOp
	for i := 0; i < 100; i++ {
		ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(fmt.Sprintf("k%03d", i)), Value: make([]byte, 200)}}})
	}
	if _, err := s.Txn(bg, &pb.TxnRequest{Success: ops}); err != nil {
		t.Fatal(err)
	}
	del(t, s, "k050") // a small revision after the huge one
	if r := ts.next(t); len(r.Events) != 100 || r.Events[99].Kv.ModRevision != 2 {
		t.Fatalf("huge revision: %d events", len(r.Events))
	}
	if r := ts.next(t); len(r.Events) != 1 || r.Events[0].Type != mvccpb.DELETE || len(r.Events[0].PrevKv.Value) != 200 {
		t.Fatalf("revision after it: %+v", r)
	}
	if first := s.events.first(); first != 3 {
		t.Fatalf("event cache starts at %d, want 3 (after the revision it left out)", first)
	}
}
