package mvcc

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestRevisionModel(t *testing.T) {
	s := openTest(t, Options{})
	if rev := s.Rev(); rev != 1 {
		t.Fatalf("empty store at revision %d, want 1", rev)
	}
	if r := put(t, s, "a", "1"); r.Header.Revision != 2 {
		t.Fatalf("first put at revision %d, want 2", r.Header.Revision)
	}
	wantKV(t, get(t, s, "a", 0), "a", "1", 2, 2, 1)
	put(t, s, "a", "2")
	wantKV(t, get(t, s, "a", 0), "a", "2", 2, 3, 2)

	// Deleting nothing and a failed transaction consume no revision.
	if r := del(t, s, "missing"); r.Deleted != 0 || r.Header.Revision != 3 {
		t.Fatalf("delete of a missing key: deleted=%d rev=%d, want 0 and 3", r.Deleted, r.Header.Revision)
	}
	txn, err := s.Txn(bg, &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte("a"), Target: pb.Compare_MOD, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_ModRevision{ModRevision: 2}}},
		Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("a"), Value: []byte("x")}}}},
		Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("a")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if txn.Succeeded || txn.Header.Revision != 3 || string(txn.Responses[0].GetResponseRange().Kvs[0].Value) != "2" {
		t.Fatalf("failed CAS: %v", txn)
	}

	// A delete and re-create starts a new generation.
	if r := del(t, s, "a"); r.Deleted != 1 || r.Header.Revision != 4 {
		t.Fatalf("delete: %v", r)
	}
	if kv := get(t, s, "a", 0); kv != nil {
		t.Fatalf("deleted key still read: %v", kv)
	}
	put(t, s, "a", "3")
	wantKV(t, get(t, s, "a", 0), "a", "3", 5, 5, 1)
	// History stays readable.
	wantKV(t, get(t, s, "a", 3), "a", "2", 2, 3, 2)
	if kv := get(t, s, "a", 4); kv != nil {
		t.Fatalf("read at the delete's revision returned %v", kv)
	}

	// A transaction with several writes consumes exactly one revision.
	txn, err = s.Txn(bg, &pb.TxnRequest{Success: []*pb.RequestOp{
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("b"), Value: []byte("1")}}},
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("c"), Value: []byte("1")}}},
		{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("b")}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if txn.Header.Revision != 6 || s.Rev() != 6 {
		t.Fatalf("txn of two puts ended at %d (store %d), want 6", txn.Header.Revision, s.Rev())
	}
	// The range after the puts saw them.
	if kvs := txn.Responses[2].GetResponseRange().Kvs; len(kvs) != 1 || kvs[0].ModRevision != 6 {
		t.Fatalf("range inside txn did not see its own write: %v", kvs)
	}
}

func TestRangeOptions(t *testing.T) {
	s := openTest(t, Options{})
	for i := 0; i < 10; i++ {
		put(t, s, fmt.Sprintf("k/%02d", i), fmt.Sprintf("v%d", 9-i))
	}
	put(t, s, "l", "outside")
	rng := func(r *pb.RangeRequest) *pb.RangeResponse {
		t.Helper()
		resp, err := s.Range(bg, r)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	prefixEnd := []byte("k0")
	prefixEnd[1] = '/' + 1

	r := rng(&pb.RangeRequest{Key: []byte("k/"), RangeEnd: prefixEnd, Limit: 3})
	if len(r.Kvs) != 3 || r.Count != 10 || !r.More || string(r.Kvs[0].Key) != "k/00" {
		t.Fatalf("limit 3: %d kvs, count %d, more %v", len(r.Kvs), r.Count, r.More)
	}
	r = rng(&pb.RangeRequest{Key: []byte("k/"), RangeEnd: prefixEnd, CountOnly: true})
	if len(r.Kvs) != 0 || r.Count != 10 {
		t.Fatalf("count only: %v", r)
	}
	r = rng(&pb.RangeRequest{Key: []byte("k/"), RangeEnd: prefixEnd, KeysOnly: true, Limit: 1})
	if r.Kvs[0].Value != nil || r.Kvs[0].Version != 1 {
		t.Fatalf("keys only: %v", r.Kvs[0])
	}
	r = rng(&pb.RangeRequest{Key: []byte("k/05"), RangeEnd: []byte{0}})
	if r.Count != 6 || string(r.Kvs[5].Key) != "l" {
		t.Fatalf("from key: count %d", r.Count)
	}
	r = rng(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if r.Count != 11 {
		t.Fatalf("all keys: count %d", r.Count)
	}
	r = rng(&pb.RangeRequest{Key: []byte("k/"), RangeEnd: prefixEnd, SortTarget: pb.RangeRequest_VALUE, SortOrder: pb.RangeRequest_ASCEND, Limit: 2})
	if string(r.Kvs[0].Value) != "v0" || string(r.Kvs[1].Value) != "v1" || !r.More {
		t.Fatalf("sort by value: %v", r.Kvs)
	}
	r = rng(&pb.RangeRequest{Key: []byte("k/"), RangeEnd: prefixEnd, SortOrder: pb.RangeRequest_DESCEND})
	if string(r.Kvs[0].Key) != "k/09" {
		t.Fatalf("descending keys: %v", r.Kvs[0])
	}
	r = rng(&pb.RangeRequest{Key: []byte("k/"), RangeEnd: prefixEnd, MinModRevision: 5, MaxModRevision: 6})
	if len(r.Kvs) != 2 || r.Count != 10 {
		t.Fatalf("mod revision filter: %d kvs, count %d", len(r.Kvs), r.Count)
	}
	// A read at a past revision: the header carries the current revision, as in etcd.
	r = rng(&pb.RangeRequest{Key: []byte("k/"), RangeEnd: prefixEnd, Revision: 4})
	if r.Count != 3 || r.Header.Revision != s.Rev() {
		t.Fatalf("read at revision 4: count %d header %d", r.Count, r.Header.Revision)
	}
	if _, err := s.Range(bg, &pb.RangeRequest{Key: []byte("k"), Revision: s.Rev() + 1}); !errors.Is(err, ErrFutureRev) {
		t.Fatalf("future revision: %v", err)
	}
}

func TestTxnCompares(t *testing.T) {
	s := openTest(t, Options{})
	put(t, s, "a", "hello") // rev 2
	cmp := func(c *pb.Compare) bool {
		t.Helper()
		c.Key = []byte(c.Key)
		resp, err := s.Txn(bg, &pb.TxnRequest{Compare: []*pb.Compare{c}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Succeeded
	}
	cases := []struct {
		c    *pb.Compare
		want bool
	}{
		{&pb.Compare{Key: []byte("a"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte("hello")}}, true},
		{&pb.Compare{Key: []byte("a"), Target: pb.Compare_VALUE, Result: pb.Compare_GREATER, TargetUnion: &pb.Compare_Value{Value: []byte("a")}}, true},
		{&pb.Compare{Key: []byte("a"), Target: pb.Compare_VERSION, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Version{Version: 1}}, true},
		{&pb.Compare{Key: []byte("a"), Target: pb.Compare_CREATE, Result: pb.Compare_LESS, TargetUnion: &pb.Compare_CreateRevision{CreateRevision: 3}}, true},
		{&pb.Compare{Key: []byte("a"), Target: pb.Compare_MOD, Result: pb.Compare_NOT_EQUAL, TargetUnion: &pb.Compare_ModRevision{ModRevision: 2}}, false},
		{&pb.Compare{Key: []byte("a"), Target: pb.Compare_LEASE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Lease{Lease: 0}}, true},
		// A missing key compares as zero, except that a value compare always fails.
		{&pb.Compare{Key: []byte("nope"), Target: pb.Compare_CREATE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_CreateRevision{CreateRevision: 0}}, true},
		{&pb.Compare{Key: []byte("nope"), Target: pb.Compare_VALUE, Result: pb.Compare_NOT_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte("x")}}, false},
		// Over a range, every key must match.
		{&pb.Compare{Key: []byte("a"), RangeEnd: []byte("b"), Target: pb.Compare_VERSION, Result: pb.Compare_GREATER, TargetUnion: &pb.Compare_Version{Version: 0}}, true},
	}
	for i, c := range cases {
		if got := cmp(c.c); got != c.want {
			t.Errorf("case %d (%v): got %v want %v", i, c.c, got, c.want)
		}
	}
}

func TestNestedTxn(t *testing.T) {
	s := openTest(t, Options{})
	put(t, s, "a", "1")
	inner := &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte("a"), Target: pb.Compare_VERSION, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Version{Version: 1}}},
		Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("b"), Value: []byte("inner")}}}},
	}
	resp, err := s.Txn(bg, &pb.TxnRequest{Success: []*pb.RequestOp{
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("a"), Value: []byte("2")}}},
		{Request: &pb.RequestOp_RequestTxn{RequestTxn: inner}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Compares are all evaluated before any write, so the inner one saw version 1.
	if !resp.Responses[1].GetResponseTxn().Succeeded {
		t.Fatalf("inner txn: %v", resp)
	}
	wantKV(t, get(t, s, "b", 0), "b", "inner", 3, 3, 1)
	wantKV(t, get(t, s, "a", 0), "a", "2", 2, 3, 2)
}

func TestPutOptions(t *testing.T) {
	s := openTest(t, Options{})
	if _, err := s.Put(bg, &pb.PutRequest{Key: []byte("a"), IgnoreValue: true}); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("ignore_value on a missing key: %v", err)
	}
	if _, err := s.Put(bg, &pb.PutRequest{Key: []byte("a"), Lease: 42}); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("put with a missing lease: %v", err)
	}
	if s.Rev() != 1 {
		t.Fatalf("failed puts changed the revision to %d", s.Rev())
	}
	put(t, s, "a", "v1")
	resp, err := s.Put(bg, &pb.PutRequest{Key: []byte("a"), IgnoreValue: true, PrevKv: true})
	if err != nil {
		t.Fatal(err)
	}
	wantKV(t, resp.PrevKv, "a", "v1", 2, 2, 1)
	wantKV(t, get(t, s, "a", 0), "a", "v1", 2, 3, 2)
	dr, err := s.DeleteRange(bg, &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("b"), PrevKv: true})
	if err != nil || dr.Deleted != 1 || len(dr.PrevKvs) != 1 {
		t.Fatalf("delete with prev_kv: %v %v", dr, err)
	}
}

// TestGroupCommit shows concurrent writers sharing commits, each still acknowledged only after
// its own commit.
func TestGroupCommit(t *testing.T) {
	s := openTest(t, Options{})
	const writers = 64
	before := s.Commits()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for j := 0; j < 10; j++ {
				put(t, s, fmt.Sprintf("k%d-%d", i, j), "v")
			}
		}()
	}
	close(start)
	wg.Wait()
	commits := s.Commits() - before
	if s.Rev() != 1+writers*10 {
		t.Fatalf("revision %d after %d puts", s.Rev(), writers*10)
	}
	if commits >= writers*10 {
		t.Fatalf("%d puts took %d commits: no group commit", writers*10, commits)
	}
	t.Logf("%d puts in %d commits", writers*10, commits)
}

func TestRestartKeepsState(t *testing.T) {
	s := openTest(t, Options{})
	put(t, s, "a", "1")
	put(t, s, "a", "2")
	put(t, s, "b", "1")
	del(t, s, "b")
	rev := s.Rev()
	s = reopen(t, s)
	if s.Rev() != rev {
		t.Fatalf("revision %d after restart, want %d", s.Rev(), rev)
	}
	wantKV(t, get(t, s, "a", 0), "a", "2", 2, 3, 2)
	wantKV(t, get(t, s, "a", 2), "a", "1", 2, 2, 1)
	if kv := get(t, s, "b", 0); kv != nil {
		t.Fatalf("deleted key came back: %v", kv)
	}
	// The revision survives even when the last change was a delete that compaction removed.
	if _, err := s.Compact(bg, &pb.CompactionRequest{Revision: rev, Physical: true}); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	if s.Rev() != rev {
		t.Fatalf("revision %d after compaction and restart, want %d", s.Rev(), rev)
	}
	if r := put(t, s, "c", "1"); r.Header.Revision != rev+1 {
		t.Fatalf("next write at %d, want %d", r.Header.Revision, rev+1)
	}
}
