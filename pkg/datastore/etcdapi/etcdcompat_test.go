package etcdapi_test

// A differential test: the same requests go to a real etcd (v3.6, in-process) and to ketch's
// datastore, and every answer must be the same once what legitimately differs is normalised
// (see normalize in etcdcompat_harness_test.go): cluster and member IDs and the raft term in
// headers, the IDs of leases the servers chose themselves, and a lease's remaining TTL, which
// moves on between the two calls. Both start at revision 1 and must stay in lock-step.
//
// The random part is seeded; the seed is logged and KETCH_ETCDCOMPAT_SEED replays it
// (KETCH_ETCDCOMPAT_STEPS sets its length).

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func bs(s string) []byte { return []byte(s) }

func prefixEnd(p string) []byte { return []byte(clientv3.GetPrefixRangeEnd(p)) }

// fromKey as a range end means "no upper bound".
var fromKey = []byte{0}

func opPut(r *pb.PutRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: r}}
}

func opRange(r *pb.RangeRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: r}}
}

func opDel(r *pb.DeleteRangeRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: r}}
}

func opTxn(r *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: r}}
}

func putKV(k, v string) *pb.RequestOp { return opPut(&pb.PutRequest{Key: bs(k), Value: bs(v)}) }

func getKey(k string) *pb.RequestOp { return opRange(&pb.RangeRequest{Key: bs(k)}) }

func getPrefix(k string) *pb.RequestOp {
	return opRange(&pb.RangeRequest{Key: bs(k), RangeEnd: prefixEnd(k)})
}

func ops(o ...*pb.RequestOp) []*pb.RequestOp { return o }

// cmp builds a compare; v is a string for VALUE and an int64 otherwise.
func cmp(key string, target pb.Compare_CompareTarget, result pb.Compare_CompareResult, v any) *pb.Compare {
	c := &pb.Compare{Key: bs(key), Target: target, Result: result}
	switch target {
	case pb.Compare_VALUE:
		c.TargetUnion = &pb.Compare_Value{Value: bs(v.(string))}
	case pb.Compare_VERSION:
		c.TargetUnion = &pb.Compare_Version{Version: v.(int64)}
	case pb.Compare_CREATE:
		c.TargetUnion = &pb.Compare_CreateRevision{CreateRevision: v.(int64)}
	case pb.Compare_MOD:
		c.TargetUnion = &pb.Compare_ModRevision{ModRevision: v.(int64)}
	case pb.Compare_LEASE:
		c.TargetUnion = &pb.Compare_Lease{Lease: v.(int64)}
	}
	return c
}

func withEnd(c *pb.Compare, end []byte) *pb.Compare {
	c.RangeEnd = end
	return c
}

var (
	allResults = []pb.Compare_CompareResult{pb.Compare_EQUAL, pb.Compare_NOT_EQUAL, pb.Compare_GREATER, pb.Compare_LESS}
	allTargets = []pb.Compare_CompareTarget{pb.Compare_VERSION, pb.Compare_CREATE, pb.Compare_MOD, pb.Compare_VALUE, pb.Compare_LEASE}
)

// expectEtcd checks a premise of a case against etcd's own answer, so that a case keeps testing
// what it says it tests.
func (p *pair) expectEtcd(ok bool, format string, args ...any) {
	p.t.Helper()
	if !ok {
		p.t.Errorf("[%s] test premise does not hold on etcd: "+format, append([]any{p.phase}, args...)...)
	}
}

func TestEtcdCompat(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real etcd")
	}
	start := time.Now()
	p := newPair(t)
	t.Logf("both servers up after %v", time.Since(start).Round(time.Millisecond))

	// Watchers that see the whole test, on one stream.
	all := p.newWatchPair("all")
	p.phase = "watch setup"
	all.create("watch everything", &pb.WatchCreateRequest{Key: fromKey, RangeEnd: fromKey})
	all.create("watch everything with prev_kv", &pb.WatchCreateRequest{Key: fromKey, RangeEnd: fromKey, PrevKv: true})
	all.create("watch an empty key (\\x00) to the end", &pb.WatchCreateRequest{RangeEnd: fromKey})
	all.create("watch key a", &pb.WatchCreateRequest{Key: bs("a")})
	all.create("watch prefix a/ with prev_kv", &pb.WatchCreateRequest{Key: bs("a/"), RangeEnd: prefixEnd("a/"), PrevKv: true})
	all.create("watch from key m, no puts", &pb.WatchCreateRequest{Key: bs("m"), RangeEnd: fromKey, Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NOPUT}})
	all.create("watch everything, no deletes, prev_kv", &pb.WatchCreateRequest{Key: fromKey, RangeEnd: fromKey, PrevKv: true, Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NODELETE}})
	all.create("watch with both filters", &pb.WatchCreateRequest{Key: fromKey, RangeEnd: fromKey, Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NOPUT, pb.WatchCreateRequest_NODELETE}})
	all.create("watch an empty range (key > end)", &pb.WatchCreateRequest{Key: bs("b"), RangeEnd: bs("a")})
	all.create("watch an empty range (key == end)", &pb.WatchCreateRequest{Key: bs("b"), RangeEnd: bs("b")})
	all.create("watch with explicit ID 100", &pb.WatchCreateRequest{WatchId: 100, Key: bs("l/"), RangeEnd: prefixEnd("l/"), PrevKv: true})
	all.create("watch with duplicate ID 100", &pb.WatchCreateRequest{WatchId: 100, Key: bs("x")})
	all.create("watch from a negative revision", &pb.WatchCreateRequest{Key: bs("a"), StartRevision: -3})
	all.create("watch from revision 1", &pb.WatchCreateRequest{Key: fromKey, RangeEnd: fromKey, StartRevision: 1, PrevKv: true})
	tmp := all.create("watch to cancel", &pb.WatchCreateRequest{Key: bs("a")})

	testKV(p)
	p.phase = "watch cancel"
	all.cancel("cancel a watcher", tmp)
	testTxn(p)
	testLeases(p)
	testCompaction(p)
	testProgress(p)
	t.Logf("deterministic cases done after %v, revision %d", time.Since(start).Round(time.Millisecond), p.rev)

	seed := time.Now().UnixNano()
	if s := os.Getenv("KETCH_ETCDCOMPAT_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("KETCH_ETCDCOMPAT_SEED=%q: %v", s, err)
		}
		seed = v
	}
	steps := 600
	if s := os.Getenv("KETCH_ETCDCOMPAT_STEPS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("KETCH_ETCDCOMPAT_STEPS=%q: %v", s, err)
		}
		steps = v
	}
	t.Logf("random sequence: seed %d (KETCH_ETCDCOMPAT_SEED=%d replays it), %d steps", seed, seed, steps)
	testRandom(p, seed, steps)
	t.Logf("random sequence done after %v, revision %d", time.Since(start).Round(time.Millisecond), p.rev)

	p.phase = "final"
	p.Put("a last write", &pb.PutRequest{Key: bs("zzz/last"), Value: bs("1")})
	for _, wp := range p.watches {
		wp.compareAll()
	}
	p.Range("the final state", &pb.RangeRequest{Key: fromKey, RangeEnd: fromKey})
	p.Range("the final state, serializable", &pb.RangeRequest{Key: fromKey, RangeEnd: fromKey, Serializable: true})
	p.LeaseLeases("the final leases")
	t.Logf("done after %v, revision %d", time.Since(start).Round(time.Millisecond), p.rev)
}

func testKV(p *pair) {
	p.phase = "kv"
	p.Range("range on the empty store", &pb.RangeRequest{Key: bs("a")})
	p.Range("range everything on the empty store", &pb.RangeRequest{Key: fromKey, RangeEnd: fromKey})
	p.expectEtcd(p.rev == 1, "an empty store is at revision 1, got %d", p.rev)

	p.Put("put a", &pb.PutRequest{Key: bs("a"), Value: bs("1"), PrevKv: true})
	p.Put("overwrite a, prev_kv", &pb.PutRequest{Key: bs("a"), Value: bs("2"), PrevKv: true})
	for i, k := range []string{"a/1", "a/2", "a/3", "a/4", "b", "b/1", "c", "d", "e", "m", "m/1"} {
		p.Put("put "+k, &pb.PutRequest{Key: bs(k), Value: bs(fmt.Sprintf("v%d", i%3))})
	}
	p.Put("overwrite a/2", &pb.PutRequest{Key: bs("a/2"), Value: bs("v9")})
	p.Put("put an empty value", &pb.PutRequest{Key: bs("empty")})
	p.Put("put ignore_value, prev_kv", &pb.PutRequest{Key: bs("a/1"), IgnoreValue: true, PrevKv: true})
	p.Put("put ignore_lease", &pb.PutRequest{Key: bs("a/3"), Value: bs("new"), IgnoreLease: true, PrevKv: true})
	p.Put("put ignore_value and ignore_lease", &pb.PutRequest{Key: bs("a/4"), IgnoreValue: true, IgnoreLease: true})
	p.Put("put ignore_value on a missing key", &pb.PutRequest{Key: bs("nokey"), IgnoreValue: true})
	p.Put("put ignore_lease on a missing key", &pb.PutRequest{Key: bs("nokey"), Value: bs("x"), IgnoreLease: true})
	p.Put("put ignore_value with a value", &pb.PutRequest{Key: bs("a"), Value: bs("x"), IgnoreValue: true})
	p.Put("put ignore_lease with a lease", &pb.PutRequest{Key: bs("a"), Value: bs("x"), IgnoreLease: true, Lease: 5})
	p.Put("put an empty key", &pb.PutRequest{Value: bs("x")})
	p.Put("put with an unknown lease", &pb.PutRequest{Key: bs("a"), Value: bs("x"), Lease: 12345})
	p.Put("put with an unknown lease and ignore_value on a missing key", &pb.PutRequest{Key: bs("nokey"), IgnoreValue: true, Lease: 12345})
	// Twenty keys written by one transaction share create and mod revision and version, so
	// sorting by those has many ties (more than sort's insertion-sort cut-off).
	var many []*pb.RequestOp
	for i := range 20 {
		many = append(many, putKV(fmt.Sprintf("s/%02d", i), fmt.Sprintf("v%d", i%4)))
	}
	p.Txn("put twenty keys in one transaction", &pb.TxnRequest{Success: many})
	for i := range 20 {
		if i%3 == 0 {
			p.Put("overwrite a s/ key", &pb.PutRequest{Key: bs(fmt.Sprintf("s/%02d", i)), Value: bs("w")})
		}
	}

	all := func(r *pb.RangeRequest) *pb.RangeRequest { r.Key, r.RangeEnd = fromKey, fromKey; return r }
	cases := []struct {
		desc string
		r    *pb.RangeRequest
	}{
		{"single key", &pb.RangeRequest{Key: bs("a")}},
		{"missing key", &pb.RangeRequest{Key: bs("zz")}},
		{"prefix", &pb.RangeRequest{Key: bs("a/"), RangeEnd: prefixEnd("a/")}},
		{"from key", &pb.RangeRequest{Key: bs("b"), RangeEnd: fromKey}},
		{"everything", all(&pb.RangeRequest{})},
		{"key \\x00 to \\x00", &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}},
		{"key above range end", &pb.RangeRequest{Key: bs("d"), RangeEnd: bs("b")}},
		{"key equal to range end", &pb.RangeRequest{Key: bs("b"), RangeEnd: bs("b")}},
		{"limit, more", all(&pb.RangeRequest{Limit: 3})},
		{"limit equal to the count", &pb.RangeRequest{Key: bs("a/"), RangeEnd: prefixEnd("a/"), Limit: 4}},
		{"limit above the count", &pb.RangeRequest{Key: bs("a/"), RangeEnd: prefixEnd("a/"), Limit: 100}},
		{"limit on a single key", &pb.RangeRequest{Key: bs("a"), Limit: 1}},
		{"negative limit", all(&pb.RangeRequest{Limit: -2})},
		{"keys_only", all(&pb.RangeRequest{KeysOnly: true})},
		{"count_only", all(&pb.RangeRequest{CountOnly: true})},
		{"count_only with limit", all(&pb.RangeRequest{CountOnly: true, Limit: 1})},
		{"count_only and keys_only", all(&pb.RangeRequest{CountOnly: true, KeysOnly: true})},
		{"serializable", all(&pb.RangeRequest{Serializable: true})},
		{"revision in the past", all(&pb.RangeRequest{Revision: 3})},
		{"revision 1", all(&pb.RangeRequest{Revision: 1})},
		{"revision 2, single key", &pb.RangeRequest{Key: bs("a"), Revision: 2}},
		{"current revision", all(&pb.RangeRequest{Revision: p.rev})},
		{"future revision", all(&pb.RangeRequest{Revision: p.rev + 1})},
		{"far future revision", &pb.RangeRequest{Key: bs("a"), Revision: p.rev + 1000}},
		{"negative revision", all(&pb.RangeRequest{Revision: -1})},
		{"min_mod_revision", all(&pb.RangeRequest{MinModRevision: 5})},
		{"max_mod_revision", all(&pb.RangeRequest{MaxModRevision: 6})},
		{"min and max create revision", all(&pb.RangeRequest{MinCreateRevision: 4, MaxCreateRevision: 8})},
		{"filters with limit", all(&pb.RangeRequest{MinModRevision: 3, Limit: 2})},
		{"filters with count_only", all(&pb.RangeRequest{MinModRevision: 3, CountOnly: true})},
		{"filters at a past revision", all(&pb.RangeRequest{MaxCreateRevision: 5, Revision: 6})},
		{"keys_only sorted by value", all(&pb.RangeRequest{KeysOnly: true, SortTarget: pb.RangeRequest_VALUE})},
		{"keys_only sorted by value, descending, limit", all(&pb.RangeRequest{KeysOnly: true, SortTarget: pb.RangeRequest_VALUE, SortOrder: pb.RangeRequest_DESCEND, Limit: 5})},
		{"count_only sorted", all(&pb.RangeRequest{CountOnly: true, SortOrder: pb.RangeRequest_DESCEND})},
		{"empty key", &pb.RangeRequest{}},
		{"empty key with a range end", &pb.RangeRequest{RangeEnd: bs("a")}},
		{"invalid sort order", all(&pb.RangeRequest{SortOrder: 9})},
		{"invalid sort target", all(&pb.RangeRequest{SortTarget: 9})},
	}
	for _, c := range cases {
		p.Range("range: "+c.desc, c.r)
	}
	for order := range pb.RangeRequest_SortOrder_name {
		for target := range pb.RangeRequest_SortTarget_name {
			o, tg := pb.RangeRequest_SortOrder(order), pb.RangeRequest_SortTarget(target)
			d := fmt.Sprintf("range sorted %v by %v", o, tg)
			p.Range(d, all(&pb.RangeRequest{SortOrder: o, SortTarget: tg}))
			p.Range(d+", limit 3", all(&pb.RangeRequest{SortOrder: o, SortTarget: tg, Limit: 3}))
			p.Range(d+", prefix s/", &pb.RangeRequest{Key: bs("s/"), RangeEnd: prefixEnd("s/"), SortOrder: o, SortTarget: tg})
			p.Range(d+", prefix s/ at a past revision", &pb.RangeRequest{Key: bs("s/"), RangeEnd: prefixEnd("s/"), SortOrder: o, SortTarget: tg, Revision: p.rev - 3})
		}
	}

	p.phase = "delete"
	p.Delete("delete a key, prev_kv", &pb.DeleteRangeRequest{Key: bs("c"), PrevKv: true})
	before := p.rev
	p.Delete("delete a missing key", &pb.DeleteRangeRequest{Key: bs("c")})
	p.Delete("delete a missing key, prev_kv", &pb.DeleteRangeRequest{Key: bs("c"), PrevKv: true})
	p.Delete("delete an empty range", &pb.DeleteRangeRequest{Key: bs("x/"), RangeEnd: prefixEnd("x/"), PrevKv: true})
	p.Delete("delete a range with key above end", &pb.DeleteRangeRequest{Key: bs("d"), RangeEnd: bs("a")})
	p.expectEtcd(p.rev == before, "deleting nothing bumped the revision from %d to %d", before, p.rev)
	p.Delete("delete a range, prev_kv", &pb.DeleteRangeRequest{Key: bs("a/3"), RangeEnd: bs("a/5"), PrevKv: true})
	p.Delete("delete from a key, prev_kv", &pb.DeleteRangeRequest{Key: bs("e"), RangeEnd: fromKey, PrevKv: true})
	p.Delete("delete a prefix", &pb.DeleteRangeRequest{Key: bs("b/"), RangeEnd: prefixEnd("b/")})
	p.Delete("delete an empty key", &pb.DeleteRangeRequest{})
	deleted := p.rev
	p.Put("re-create c", &pb.PutRequest{Key: bs("c"), Value: bs("again"), PrevKv: true})
	p.Put("overwrite c", &pb.PutRequest{Key: bs("c"), Value: bs("again2"), PrevKv: true})
	p.Range("c after re-creation", &pb.RangeRequest{Key: bs("c")})
	p.Range("c before its deletion", &pb.RangeRequest{Key: bs("c"), Revision: before - 1})
	p.Range("c while deleted", &pb.RangeRequest{Key: bs("c"), Revision: deleted})
	p.Range("everything before the deletes", &pb.RangeRequest{Key: fromKey, RangeEnd: fromKey, Revision: before})
}

func testTxn(p *pair) {
	p.phase = "txn compares"
	a, err := p.Range("read a", &pb.RangeRequest{Key: bs("a")})
	if err != nil || len(a.Kvs) != 1 {
		p.t.Fatalf("reading a: %v %v", a, err)
	}
	kv := a.Kvs[0]
	exact := map[pb.Compare_CompareTarget]any{
		pb.Compare_VERSION: kv.Version, pb.Compare_CREATE: kv.CreateRevision, pb.Compare_MOD: kv.ModRevision,
		pb.Compare_VALUE: string(kv.Value), pb.Compare_LEASE: kv.Lease,
	}
	around := func(target pb.Compare_CompareTarget) []any {
		if target == pb.Compare_VALUE {
			v := exact[target].(string)
			return []any{"", v[:len(v)-1], v, v + "0", "z"}
		}
		v := exact[target].(int64)
		return []any{v - 1, v, v + 1, int64(0)}
	}
	for _, target := range allTargets {
		for _, result := range allResults {
			for _, v := range around(target) {
				for _, key := range []string{"a", "nokey"} {
					d := fmt.Sprintf("txn %s %v %v %v", key, target, result, v)
					p.Txn(d, &pb.TxnRequest{Compare: []*pb.Compare{cmp(key, target, result, v)}, Success: ops(getKey("a")), Failure: ops(getKey("b"))})
				}
				// Over a range: every key in it must match.
				p.Txn(fmt.Sprintf("txn prefix a/ %v %v %v", target, result, v), &pb.TxnRequest{
					Compare: []*pb.Compare{withEnd(cmp("a/", target, result, v), prefixEnd("a/"))}, Success: ops(getKey("a")), Failure: ops(getKey("b")),
				})
			}
			// A range with no key in it compares against an empty key-value, except VALUE,
			// which always fails.
			zero := any(int64(0))
			if target == pb.Compare_VALUE {
				zero = ""
			}
			p.Txn(fmt.Sprintf("txn empty range %v %v", target, result), &pb.TxnRequest{
				Compare: []*pb.Compare{withEnd(cmp("x/", target, result, zero), prefixEnd("x/"))}, Success: ops(getKey("a")), Failure: ops(getKey("b")),
			})
			p.Txn(fmt.Sprintf("txn from key %v %v", target, result), &pb.TxnRequest{
				Compare: []*pb.Compare{withEnd(cmp("m", target, result, exact[target]), fromKey)}, Success: ops(getKey("a")), Failure: ops(getKey("b")),
			})
		}
	}
	p.Txn("txn compare with a mismatched target union", &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: bs("a"), Target: pb.Compare_MOD, Result: pb.Compare_GREATER, TargetUnion: &pb.Compare_Version{Version: 1 << 40}}},
		Success: ops(getKey("a")), Failure: ops(getKey("b")),
	})
	p.Txn("txn compare with no target union", &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: bs("a"), Target: pb.Compare_VALUE, Result: pb.Compare_GREATER}},
		Success: ops(getKey("a")), Failure: ops(getKey("b")),
	})
	p.Txn("txn with several compares, all true", &pb.TxnRequest{
		Compare: []*pb.Compare{cmp("a", pb.Compare_VERSION, pb.Compare_GREATER, int64(0)), cmp("nokey", pb.Compare_CREATE, pb.Compare_EQUAL, int64(0)), cmp("a", pb.Compare_VALUE, pb.Compare_EQUAL, "2")},
		Success: ops(getKey("a")), Failure: ops(getKey("b")),
	})
	p.Txn("txn with several compares, last false", &pb.TxnRequest{
		Compare: []*pb.Compare{cmp("a", pb.Compare_VERSION, pb.Compare_GREATER, int64(0)), cmp("a", pb.Compare_VALUE, pb.Compare_EQUAL, "3")},
		Success: ops(getKey("a")), Failure: ops(getKey("b")),
	})
	p.Txn("txn compare with an empty key", &pb.TxnRequest{Compare: []*pb.Compare{cmp("", pb.Compare_VERSION, pb.Compare_EQUAL, int64(0))}})
	p.Txn("empty txn", &pb.TxnRequest{})
	p.Txn("txn with compares only", &pb.TxnRequest{Compare: []*pb.Compare{cmp("a", pb.Compare_VERSION, pb.Compare_GREATER, int64(0))}})

	p.phase = "txn writes"
	p.Put("put t/0", &pb.PutRequest{Key: bs("t/0"), Value: bs("v0")})
	pre := p.rev
	p.Txn("txn: puts, deletes and ranges reading the txn's own writes", &pb.TxnRequest{
		Compare: []*pb.Compare{cmp("a", pb.Compare_VERSION, pb.Compare_GREATER, int64(0))},
		Success: ops(
			getPrefix("t/"),
			opPut(&pb.PutRequest{Key: bs("t/1"), Value: bs("v1"), PrevKv: true}),
			getPrefix("t/"),
			putKV("t/2", "v2"),
			opRange(&pb.RangeRequest{Key: bs("t/"), RangeEnd: prefixEnd("t/"), CountOnly: true}),
			opDel(&pb.DeleteRangeRequest{Key: bs("t/0"), PrevKv: true}),
			getPrefix("t/"),
			opRange(&pb.RangeRequest{Key: bs("t/"), RangeEnd: prefixEnd("t/"), Revision: pre}),
			opDel(&pb.DeleteRangeRequest{Key: bs("nokey"), PrevKv: true}),
			opPut(&pb.PutRequest{Key: bs("a"), IgnoreValue: true, PrevKv: true}),
			opRange(&pb.RangeRequest{Key: fromKey, RangeEnd: fromKey, SortTarget: pb.RangeRequest_MOD, SortOrder: pb.RangeRequest_DESCEND, Limit: 3}),
		),
		Failure: ops(putKV("t/never", "x")),
	})
	p.expectEtcd(p.rev == pre+1, "a write txn took revisions %d..%d", pre, p.rev)
	p.Txn("txn: failure branch", &pb.TxnRequest{
		Compare: []*pb.Compare{cmp("t/2", pb.Compare_VALUE, pb.Compare_EQUAL, "nope")},
		Success: ops(putKV("t/never", "x")),
		Failure: ops(opDel(&pb.DeleteRangeRequest{Key: bs("t/"), RangeEnd: prefixEnd("t/"), PrevKv: true}), putKV("t/3", "v3"), getPrefix("t/")),
	})
	p.Txn("txn: a delete before the first change, then a put", &pb.TxnRequest{
		Success: ops(opDel(&pb.DeleteRangeRequest{Key: bs("nokey")}), putKV("t/4", "v4"), opDel(&pb.DeleteRangeRequest{Key: bs("nokey2")})),
	})
	before := p.rev
	p.Txn("txn: writes that all turn out to be no-ops", &pb.TxnRequest{
		Success: ops(opDel(&pb.DeleteRangeRequest{Key: bs("nokey"), PrevKv: true}), opDel(&pb.DeleteRangeRequest{Key: bs("x/"), RangeEnd: prefixEnd("x/")}), getKey("a")),
	})
	p.Txn("txn: a failing compare with no-op writes", &pb.TxnRequest{
		Compare: []*pb.Compare{cmp("nokey", pb.Compare_VALUE, pb.Compare_EQUAL, "")},
		Failure: ops(opDel(&pb.DeleteRangeRequest{Key: bs("nokey")})),
	})
	p.expectEtcd(p.rev == before, "no-op txns bumped the revision from %d to %d", before, p.rev)
	p.Txn("txn: range at the revision the txn writes", &pb.TxnRequest{
		Success: ops(putKV("t/5", "v5"), opRange(&pb.RangeRequest{Key: bs("t/5"), Revision: p.rev + 1})),
	})
	p.Txn("txn: range at a future revision", &pb.TxnRequest{Success: ops(opRange(&pb.RangeRequest{Key: bs("a"), Revision: p.rev + 5}))})
	p.Txn("txn: range at revision -1", &pb.TxnRequest{Success: ops(opRange(&pb.RangeRequest{Key: bs("a"), Revision: -1}))})
	p.Txn("txn: range at revision -2", &pb.TxnRequest{Success: ops(opRange(&pb.RangeRequest{Key: bs("a"), Revision: -2}))})
	p.Txn("txn: write txn, range at revision -2", &pb.TxnRequest{Success: ops(putKV("t/6", "x"), opRange(&pb.RangeRequest{Key: bs("a"), Revision: -2}))})
	p.Txn("txn: range at the current revision", &pb.TxnRequest{Success: ops(opRange(&pb.RangeRequest{Key: bs("t/"), RangeEnd: prefixEnd("t/"), Revision: p.rev}))})
	p.Txn("txn: put with an unknown lease", &pb.TxnRequest{Success: ops(putKV("t/7", "x"), opPut(&pb.PutRequest{Key: bs("t/8"), Lease: 777}))})
	p.Txn("txn: put with an unknown lease in the branch not taken", &pb.TxnRequest{
		Compare: []*pb.Compare{cmp("a", pb.Compare_VERSION, pb.Compare_GREATER, int64(0))},
		Success: ops(putKV("t/7", "x")), Failure: ops(opPut(&pb.PutRequest{Key: bs("t/8"), Lease: 777})),
	})
	p.Txn("txn: put ignore_value on a missing key", &pb.TxnRequest{Success: ops(opPut(&pb.PutRequest{Key: bs("nokey"), IgnoreValue: true}))})
	p.Txn("txn: put ignore_value on a missing key with an unknown lease", &pb.TxnRequest{Success: ops(opPut(&pb.PutRequest{Key: bs("nokey"), IgnoreValue: true, Lease: 777}))})
	p.Txn("txn: put ignore_lease on a key the txn creates", &pb.TxnRequest{Success: ops(opPut(&pb.PutRequest{Key: bs("t/new"), IgnoreLease: true, Value: bs("x")}))})
	p.Txn("txn: an empty request op", &pb.TxnRequest{Success: []*pb.RequestOp{{}}})
	p.Txn("txn: range with an empty key", &pb.TxnRequest{Success: ops(opRange(&pb.RangeRequest{}))})
	p.Txn("txn: put with an empty key", &pb.TxnRequest{Success: ops(opPut(&pb.PutRequest{Value: bs("x")}))})
	p.Txn("txn: delete with an empty key", &pb.TxnRequest{Failure: ops(opDel(&pb.DeleteRangeRequest{}))})
	p.Txn("txn: put ignore_value with a value", &pb.TxnRequest{Success: ops(opPut(&pb.PutRequest{Key: bs("a"), Value: bs("x"), IgnoreValue: true}))})

	p.phase = "txn nested"
	p.Txn("nested txns: compares see the state before the txn", &pb.TxnRequest{
		Compare: []*pb.Compare{cmp("t/2", pb.Compare_VERSION, pb.Compare_GREATER, int64(0))},
		Success: ops(
			putKV("n/1", "1"),
			opTxn(&pb.TxnRequest{
				Compare: []*pb.Compare{cmp("n/1", pb.Compare_VERSION, pb.Compare_EQUAL, int64(0))},
				Success: ops(getPrefix("n/"), opPut(&pb.PutRequest{Key: bs("n/2"), Value: bs("2"), PrevKv: true}),
					opTxn(&pb.TxnRequest{
						Compare: []*pb.Compare{cmp("n/2", pb.Compare_CREATE, pb.Compare_EQUAL, int64(0))},
						Success: ops(getPrefix("n/"), putKV("n/3", "3")),
						Failure: ops(putKV("n/4", "4")),
					})),
				Failure: ops(putKV("n/5", "5")),
			}),
			getPrefix("n/"),
			opTxn(&pb.TxnRequest{Success: ops(opDel(&pb.DeleteRangeRequest{Key: bs("nokey")}))}),
		),
	})
	p.Txn("nested txns: the failure branches", &pb.TxnRequest{
		Compare: []*pb.Compare{cmp("n/1", pb.Compare_VERSION, pb.Compare_EQUAL, int64(0))},
		Success: ops(putKV("n/6", "6")),
		Failure: ops(
			opTxn(&pb.TxnRequest{
				Compare: []*pb.Compare{cmp("n/", pb.Compare_MOD, pb.Compare_LESS, int64(0))},
				Success: ops(putKV("n/7", "7")),
				Failure: ops(opDel(&pb.DeleteRangeRequest{Key: bs("n/1"), PrevKv: true}), getPrefix("n/")),
			}),
			opTxn(&pb.TxnRequest{Failure: ops(putKV("n/8", "8"))}),
		),
	})
	p.Txn("nested read-only txns", &pb.TxnRequest{Success: ops(getKey("a"), opTxn(&pb.TxnRequest{Success: ops(getPrefix("n/"))}), opTxn(&pb.TxnRequest{}))})
	p.Txn("nested txn: put with an unknown lease", &pb.TxnRequest{Success: ops(putKV("n/9", "9"), opTxn(&pb.TxnRequest{Success: ops(opPut(&pb.PutRequest{Key: bs("n/10"), Lease: 777}))}))})
	p.Txn("nested txn: range at a future revision", &pb.TxnRequest{Success: ops(opTxn(&pb.TxnRequest{Success: ops(opRange(&pb.RangeRequest{Key: bs("a"), Revision: p.rev + 1}))}))})
	p.Txn("nested txn: an empty request op", &pb.TxnRequest{Success: ops(opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{{}}}))})

	p.phase = "txn duplicate keys"
	dup := []struct {
		desc string
		r    *pb.TxnRequest
	}{
		{"two puts of a key", &pb.TxnRequest{Success: ops(putKV("d/1", "1"), putKV("d/1", "2"))}},
		{"two puts of a key in the branch not taken", &pb.TxnRequest{Failure: ops(putKV("d/1", "1"), putKV("d/1", "2"))}},
		{"put and delete of a key", &pb.TxnRequest{Success: ops(putKV("d/1", "1"), opDel(&pb.DeleteRangeRequest{Key: bs("d/1")}))}},
		{"delete a range and put in it", &pb.TxnRequest{Success: ops(opDel(&pb.DeleteRangeRequest{Key: bs("d/"), RangeEnd: prefixEnd("d/")}), putKV("d/2", "1"))}},
		{"delete from a key and put above it", &pb.TxnRequest{Success: ops(opDel(&pb.DeleteRangeRequest{Key: bs("d/"), RangeEnd: fromKey}), putKV("d/2", "1"))}},
		{"two deletes of a key", &pb.TxnRequest{Success: ops(opDel(&pb.DeleteRangeRequest{Key: bs("d/1")}), opDel(&pb.DeleteRangeRequest{Key: bs("d/1")}))}},
		{"put, and a nested put of the key", &pb.TxnRequest{Success: ops(putKV("d/1", "1"), opTxn(&pb.TxnRequest{Success: ops(putKV("d/1", "2"))}))}},
		{"delete, and a nested put of the key", &pb.TxnRequest{Success: ops(opDel(&pb.DeleteRangeRequest{Key: bs("d/1")}), opTxn(&pb.TxnRequest{Failure: ops(putKV("d/1", "2"))}))}},
		{"nested put in both branches", &pb.TxnRequest{Success: ops(opTxn(&pb.TxnRequest{Success: ops(putKV("d/3", "1")), Failure: ops(putKV("d/3", "2"))}))}},
		{"two nested txns putting the key", &pb.TxnRequest{Success: ops(opTxn(&pb.TxnRequest{Success: ops(putKV("d/4", "1"))}), opTxn(&pb.TxnRequest{Failure: ops(putKV("d/4", "2"))}))}},
		{"a nested delete and an outer put", &pb.TxnRequest{Success: ops(opTxn(&pb.TxnRequest{Success: ops(opDel(&pb.DeleteRangeRequest{Key: bs("d/5")}))}), putKV("d/5", "1"))}},
		{"a put and a range of the key", &pb.TxnRequest{Success: ops(putKV("d/6", "1"), getKey("d/6"), getPrefix("d/"))}},
	}
	for _, c := range dup {
		p.Txn("txn: "+c.desc, c.r)
	}
	// A delete to the end of the keyspace escapes the duplicate-key check (etcd's interval
	// ends at "\x00"), so a transaction can put a key and delete it again: watchers' prev_kv
	// is the key before the transaction.
	p.Put("put d/8", &pb.PutRequest{Key: bs("d/8"), Value: bs("old")})
	p.Txn("txn: put an existing key, then delete from a key below it", &pb.TxnRequest{Success: ops(
		opPut(&pb.PutRequest{Key: bs("d/8"), Value: bs("new"), PrevKv: true}),
		opDel(&pb.DeleteRangeRequest{Key: bs("d/8"), RangeEnd: fromKey, PrevKv: true}),
		getKey("d/8"),
	)})
	p.Txn("txn: put a new key, then delete from a key below it", &pb.TxnRequest{Success: ops(
		opPut(&pb.PutRequest{Key: bs("d/9"), Value: bs("new"), PrevKv: true}),
		opDel(&pb.DeleteRangeRequest{Key: bs("d/"), RangeEnd: fromKey, PrevKv: true}),
	)})

	p.phase = "txn too many ops"
	n := func(count int, op func(i int) *pb.RequestOp) []*pb.RequestOp {
		var o []*pb.RequestOp
		for i := range count {
			o = append(o, op(i))
		}
		return o
	}
	rangeOp := func(i int) *pb.RequestOp { return getKey(fmt.Sprintf("o/%d", i)) }
	putOp := func(i int) *pb.RequestOp { return putKV(fmt.Sprintf("o/%d", i), "x") }
	p.Txn("txn with 128 ranges", &pb.TxnRequest{Success: n(128, rangeOp)})
	p.Txn("txn with 129 ranges", &pb.TxnRequest{Success: n(129, rangeOp)})
	p.Txn("txn with 129 puts in the failure branch", &pb.TxnRequest{Failure: n(129, putOp)})
	p.Txn("txn with 128 puts", &pb.TxnRequest{Success: n(128, putOp)})
	var cmps []*pb.Compare
	for i := range 129 {
		cmps = append(cmps, cmp(fmt.Sprintf("o/%d", i), pb.Compare_VERSION, pb.Compare_GREATER, int64(0)))
	}
	p.Txn("txn with 129 compares", &pb.TxnRequest{Compare: cmps})
	p.Txn("txn with 128 compares", &pb.TxnRequest{Compare: cmps[:128], Success: ops(getKey("a"))})
	p.Txn("nested txn over the remaining ops", &pb.TxnRequest{Success: append(n(100, rangeOp), opTxn(&pb.TxnRequest{Success: n(29, rangeOp)}))})
	p.Txn("nested txn within the remaining ops", &pb.TxnRequest{Success: append(n(100, rangeOp), opTxn(&pb.TxnRequest{Success: n(28, rangeOp)}))})
}

func testLeases(p *pair) {
	p.phase = "leases"
	l100, _ := p.LeaseGrant("grant lease 100", &pb.LeaseGrantRequest{ID: 100, TTL: 300})
	p.LeaseGrant("grant lease 100 again", &pb.LeaseGrantRequest{ID: 100, TTL: 300})
	p.LeaseGrant("grant lease 100 again with a TTL too large", &pb.LeaseGrantRequest{ID: 100, TTL: 9_000_000_001})
	p.LeaseGrant("grant a TTL too large", &pb.LeaseGrantRequest{TTL: 9_000_000_001})
	p.LeaseGrant("grant the largest TTL", &pb.LeaseGrantRequest{ID: 110, TTL: 9_000_000_000})
	auto, _ := p.LeaseGrant("grant an auto-assigned lease", &pb.LeaseGrantRequest{TTL: 600})
	p.LeaseGrant("grant lease 50 with the longest TTL", &pb.LeaseGrantRequest{ID: 50, TTL: 900})
	p.LeaseGrant("grant lease 200", &pb.LeaseGrantRequest{ID: 200, TTL: 300})
	p.LeaseGrant("grant a negative lease ID", &pb.LeaseGrantRequest{ID: -7, TTL: 300})
	// Leases below the minimum TTL get the minimum (2s): revoke them at once, before they
	// expire on their own.
	for i, ttl := range []int64{1, 0, -5} {
		id := int64(101 + i)
		p.LeaseGrant(fmt.Sprintf("grant TTL %d", ttl), &pb.LeaseGrantRequest{ID: id, TTL: ttl})
		p.LeaseRevoke(fmt.Sprintf("revoke the TTL %d lease", ttl), &pb.LeaseRevokeRequest{ID: id})
	}
	p.LeaseLeases("list leases")
	for _, k := range []string{"l/1", "l/2", "l/5", "l/6"} {
		p.Put("put "+k+" with lease 100", &pb.PutRequest{Key: bs(k), Value: bs("x"), Lease: l100})
	}
	p.Put("put l/3 with the auto lease", &pb.PutRequest{Key: bs("l/3"), Value: bs("x"), Lease: auto, PrevKv: true})
	p.Put("put l/4 with lease 100", &pb.PutRequest{Key: bs("l/4"), Value: bs("x"), Lease: l100})
	p.Put("put l/4 without a lease (detaches it)", &pb.PutRequest{Key: bs("l/4"), Value: bs("y"), PrevKv: true})
	p.Put("put l/5 ignore_lease (keeps it)", &pb.PutRequest{Key: bs("l/5"), Value: bs("y"), IgnoreLease: true, PrevKv: true})
	p.Put("move l/6 to the auto lease", &pb.PutRequest{Key: bs("l/6"), Value: bs("y"), Lease: auto, PrevKv: true})
	p.Put("put l/7 with lease 200", &pb.PutRequest{Key: bs("l/7"), Value: bs("x"), Lease: 200})
	p.Delete("delete l/7 (detaches it)", &pb.DeleteRangeRequest{Key: bs("l/7"), PrevKv: true})
	p.Txn("txn put with lease 200", &pb.TxnRequest{Success: ops(opPut(&pb.PutRequest{Key: bs("l/8"), Value: bs("x"), Lease: 200}))})
	p.Range("range l/", &pb.RangeRequest{Key: bs("l/"), RangeEnd: prefixEnd("l/")})
	p.LeaseTimeToLive("time to live of lease 100, keys", &pb.LeaseTimeToLiveRequest{ID: l100, Keys: true})
	p.LeaseTimeToLive("time to live of lease 100", &pb.LeaseTimeToLiveRequest{ID: l100})
	p.LeaseTimeToLive("time to live of the auto lease, keys", &pb.LeaseTimeToLiveRequest{ID: auto, Keys: true})
	p.LeaseTimeToLive("time to live of lease 110", &pb.LeaseTimeToLiveRequest{ID: 110, Keys: true})
	p.LeaseTimeToLive("time to live of an unknown lease", &pb.LeaseTimeToLiveRequest{ID: 999, Keys: true})
	for _, result := range allResults {
		p.Txn(fmt.Sprintf("txn compare lease %v 100", result), &pb.TxnRequest{
			Compare: []*pb.Compare{cmp("l/1", pb.Compare_LEASE, result, l100)}, Success: ops(getKey("l/1")), Failure: ops(getKey("l/2")),
		})
		p.Txn(fmt.Sprintf("txn compare lease over l/ %v auto", result), &pb.TxnRequest{
			Compare: []*pb.Compare{withEnd(cmp("l/", pb.Compare_LEASE, result, auto), prefixEnd("l/"))}, Success: ops(getKey("l/1")), Failure: ops(getKey("l/2")),
		})
	}
	p.LeaseLeases("list leases with keys attached")
	before := p.rev
	p.LeaseRevoke("revoke lease 100", &pb.LeaseRevokeRequest{ID: l100})
	p.expectEtcd(p.rev == before+1, "revoking a lease with keys took revisions %d..%d", before, p.rev)
	p.LeaseRevoke("revoke lease 100 again", &pb.LeaseRevokeRequest{ID: l100})
	p.LeaseRevoke("revoke an unknown lease", &pb.LeaseRevokeRequest{ID: 999})
	p.LeaseTimeToLive("time to live of the revoked lease", &pb.LeaseTimeToLiveRequest{ID: l100, Keys: true})
	p.Put("put with the revoked lease", &pb.PutRequest{Key: bs("l/9"), Value: bs("x"), Lease: l100})
	p.LeaseGrant("grant lease 300, no keys", &pb.LeaseGrantRequest{ID: 300, TTL: 300})
	before = p.rev
	p.LeaseRevoke("revoke lease 300 (no keys)", &pb.LeaseRevokeRequest{ID: 300})
	p.expectEtcd(p.rev == before, "revoking a lease without keys bumped the revision from %d to %d", before, p.rev)
	p.LeaseRevoke("revoke lease 200 (its one key deleted, one attached by a txn)", &pb.LeaseRevokeRequest{ID: 200})
	p.Range("range l/ after revoking", &pb.RangeRequest{Key: bs("l/"), RangeEnd: prefixEnd("l/")})
	p.LeaseLeases("list leases after revoking")
}

func testCompaction(p *pair) {
	p.phase = "compaction"
	cw := p.newWatchPair("compaction")
	p.Put("put c/x", &pb.PutRequest{Key: bs("c/x"), Value: bs("1")})
	p.Put("overwrite c/x", &pb.PutRequest{Key: bs("c/x"), Value: bs("2")})
	p.Put("put c/y", &pb.PutRequest{Key: bs("c/y"), Value: bs("1")})
	p.Txn("put c/z and c/w", &pb.TxnRequest{Success: ops(putKV("c/z", "1"), putKV("c/w", "1"))})
	p.Txn("delete c/y, overwrite c/z", &pb.TxnRequest{Success: ops(opDel(&pb.DeleteRangeRequest{Key: bs("c/y")}), putKV("c/z", "2"))})
	del := p.rev
	p.Compact("compact a future revision", &pb.CompactionRequest{Revision: p.rev + 1})
	p.Compact("compact revision -1", &pb.CompactionRequest{Revision: -1})
	p.Compact("compact revision -5", &pb.CompactionRequest{Revision: -5})
	p.Compact("compact at a delete", &pb.CompactionRequest{Revision: del, Physical: true})
	everything := func(rev int64) *pb.RangeRequest {
		return &pb.RangeRequest{Key: fromKey, RangeEnd: fromKey, Revision: rev}
	}
	p.Range("range below the compaction", everything(del-1))
	p.Range("range at revision 1 after compacting", everything(1))
	p.Range("range at the compaction", everything(del))
	p.Range("range at the compaction, count_only", &pb.RangeRequest{Key: bs("c/"), RangeEnd: prefixEnd("c/"), Revision: del, CountOnly: true})
	p.Range("range at revision -1 after compacting", everything(-1))
	p.Txn("txn range below the compaction", &pb.TxnRequest{Success: ops(opRange(everything(del - 1)))})
	p.Txn("txn range at the compaction", &pb.TxnRequest{Success: ops(opRange(everything(del)))})
	p.Txn("txn range at revision -1 after compacting", &pb.TxnRequest{Success: ops(opRange(everything(-1)))})
	p.Txn("write txn range below the compaction", &pb.TxnRequest{Success: ops(putKV("c/v", "1"), opRange(everything(del-1)))})
	p.Compact("compact the same revision again", &pb.CompactionRequest{Revision: del})
	p.Compact("compact below the compaction", &pb.CompactionRequest{Revision: del - 1, Physical: true})
	p.Compact("compact revision 0", &pb.CompactionRequest{})
	p.watchAlone("watch below the compaction", &pb.WatchCreateRequest{Key: bs("c/"), RangeEnd: prefixEnd("c/"), StartRevision: del - 1})
	p.watchAlone("watch from revision 1", &pb.WatchCreateRequest{Key: fromKey, RangeEnd: fromKey, StartRevision: 1, PrevKv: true})
	cw.create("watch from the compaction, prev_kv", &pb.WatchCreateRequest{Key: bs("c/"), RangeEnd: prefixEnd("c/"), StartRevision: del, PrevKv: true})
	cw.create("watch from the compaction", &pb.WatchCreateRequest{Key: fromKey, RangeEnd: fromKey, StartRevision: del})
	cw.create("watch from after the compaction, prev_kv", &pb.WatchCreateRequest{Key: fromKey, RangeEnd: fromKey, StartRevision: del + 1, PrevKv: true})
	p.Put("overwrite c/x again", &pb.PutRequest{Key: bs("c/x"), Value: bs("3")})
	p.Delete("delete c/w", &pb.DeleteRangeRequest{Key: bs("c/w")})
	p.Compact("compact at the current revision, not physical", &pb.CompactionRequest{Revision: p.rev})
	cur := p.rev
	cw.create("watch from the non-physical compaction, prev_kv", &pb.WatchCreateRequest{Key: bs("c/"), RangeEnd: prefixEnd("c/"), StartRevision: cur, PrevKv: true})
	p.watchAlone("watch below the non-physical compaction", &pb.WatchCreateRequest{Key: bs("c/"), RangeEnd: prefixEnd("c/"), StartRevision: cur - 1})
	p.Range("range at the compacted current revision", everything(cur))
	p.Range("range below the compacted current revision", everything(cur-1))
	p.Compact("compact the current revision again", &pb.CompactionRequest{Revision: cur, Physical: true})
	p.Put("write after compacting", &pb.PutRequest{Key: bs("c/x"), Value: bs("4"), PrevKv: true})
	p.Range("everything after compacting", everything(0))
}

func testProgress(p *pair) {
	p.phase = "progress"
	pw := p.newWatchPair("progress")
	pw.progress("progress request on a stream without watchers", 300*time.Millisecond)
	pw.create("watch p", &pb.WatchCreateRequest{Key: bs("p")})
	p.Put("put p", &pb.PutRequest{Key: bs("p"), Value: bs("1")})
	pw.progress("progress after a write to the watched key", callTimeout)
	p.Put("put q (not watched)", &pb.PutRequest{Key: bs("q"), Value: bs("1")})
	pw.progress("progress after a write nobody watches", callTimeout)

	// etcd answers a progress request only once every watcher's start revision is reached.
	fw := p.newWatchPair("future")
	fw.create("watch from the next revision", &pb.WatchCreateRequest{Key: bs("f"), StartRevision: p.rev + 1})
	fw.progress("progress with a watcher starting at the next revision", 300*time.Millisecond)
	fw.create("watch from a future revision", &pb.WatchCreateRequest{Key: bs("f"), StartRevision: p.rev + 3, PrevKv: true})
	p.Put("put f", &pb.PutRequest{Key: bs("f"), Value: bs("1")})
	fw.progress("progress with a watcher starting at a future revision", 300*time.Millisecond)
	p.Put("put f again", &pb.PutRequest{Key: bs("f"), Value: bs("2")})
	p.Put("put f a third time", &pb.PutRequest{Key: bs("f"), Value: bs("3")})
	fw.syncTo(p.rev)
	fw.progress("progress once every start revision is reached", callTimeout)
}

// gen makes the seeded random sequence. It draws only from its seed and from etcd's answers, so
// a seed replays the same requests.
type gen struct {
	p        *pair
	r        *rand.Rand
	keys     []string
	values   []string
	leases   []int64
	explicit int64
	ws       *watchPair
	live     []int64
}

func testRandom(p *pair, seed int64, steps int) {
	g := &gen{p: p, r: rand.New(rand.NewPCG(uint64(seed), 0x6b657463)), explicit: 1000}
	for i := range 20 {
		g.keys = append(g.keys, fmt.Sprintf("k/%02d", i))
	}
	g.keys = append(g.keys, "j/0", "j/1", "j/2", "j/3", "a", "b", "z", "zz")
	g.values = []string{"", "a", "b", "c", "x", "yy", "zzz"}
	g.ws = p.newWatchPair("random")
	for i := range steps {
		p.phase = fmt.Sprintf("random seed=%d step=%d", seed, i)
		g.step()
	}
}

func (g *gen) chance(pct int) bool { return g.r.IntN(100) < pct }

func (g *gen) key() string {
	if g.chance(3) {
		return fmt.Sprintf("k/%02d", 20+g.r.IntN(5))
	}
	return g.keys[g.r.IntN(len(g.keys))]
}

func (g *gen) value() string {
	if g.chance(30) {
		b := make([]byte, 1+g.r.IntN(6))
		for i := range b {
			b[i] = byte('a' + g.r.IntN(4))
		}
		return string(b)
	}
	return g.values[g.r.IntN(len(g.values))]
}

func (g *gen) lease() int64 {
	if len(g.leases) == 0 || g.chance(5) {
		return 424242 // never granted
	}
	return g.leases[g.r.IntN(len(g.leases))]
}

func (g *gen) keyRange() (key, end []byte) {
	switch x := g.r.IntN(100); {
	case x < 40:
		return bs(g.key()), nil
	case x < 60:
		p := []string{"k/", "j/", "k/1", "z"}[g.r.IntN(4)]
		return bs(p), prefixEnd(p)
	case x < 70:
		return bs(g.key()), fromKey
	case x < 80:
		return fromKey, fromKey
	default:
		return bs(g.key()), bs(g.key())
	}
}

// revision picks a revision around the interesting ones: compacted, current, future.
func (g *gen) revision() int64 {
	lo := max(g.p.compactRev-2, 1)
	return lo + g.r.Int64N(g.p.rev+3-lo)
}

func (g *gen) rangeReq() *pb.RangeRequest {
	r := &pb.RangeRequest{}
	r.Key, r.RangeEnd = g.keyRange()
	if g.chance(20) {
		r.Revision = g.revision()
	}
	if g.chance(30) {
		r.Limit = 1 + g.r.Int64N(16)
	}
	if g.chance(40) {
		r.SortOrder = pb.RangeRequest_SortOrder(g.r.IntN(3))
		r.SortTarget = pb.RangeRequest_SortTarget(g.r.IntN(5))
	}
	r.KeysOnly = g.chance(10)
	r.CountOnly = g.chance(10)
	r.Serializable = g.chance(30)
	if g.chance(10) {
		r.MinModRevision = g.revision()
	}
	if g.chance(10) {
		r.MaxModRevision = g.revision()
	}
	if g.chance(10) {
		r.MinCreateRevision = g.revision()
	}
	if g.chance(10) {
		r.MaxCreateRevision = g.revision()
	}
	return r
}

func (g *gen) putReq() *pb.PutRequest {
	r := &pb.PutRequest{Key: bs(g.key()), Value: bs(g.value()), PrevKv: g.chance(40)}
	if g.chance(15) {
		r.Lease = g.lease()
	}
	if g.chance(5) {
		r.IgnoreValue, r.Value = true, nil
	}
	if g.chance(5) {
		r.IgnoreLease, r.Lease = true, 0
	}
	return r
}

func (g *gen) delReq(single bool) *pb.DeleteRangeRequest {
	r := &pb.DeleteRangeRequest{PrevKv: g.chance(50)}
	if single {
		r.Key = bs(g.key())
	} else {
		r.Key, r.RangeEnd = g.keyRange()
	}
	return r
}

func (g *gen) compare() *pb.Compare {
	target := allTargets[g.r.IntN(len(allTargets))]
	result := allResults[g.r.IntN(len(allResults))]
	var v any
	switch target {
	case pb.Compare_VALUE:
		v = g.value()
	case pb.Compare_VERSION:
		v = g.r.Int64N(5)
	case pb.Compare_LEASE:
		v = int64(0)
		if g.chance(50) {
			v = g.lease()
		}
		// Auto-assigned IDs are unrelated numbers on the two servers: only equality with one
		// means the same on both. (Explicit IDs are far below either server's auto IDs.)
		if v.(int64) >= autoLeaseBase && (result == pb.Compare_GREATER || result == pb.Compare_LESS) {
			v = g.explicit
		}
	default:
		v = g.r.Int64N(g.p.rev + 2)
	}
	c := cmp(g.key(), target, result, v)
	if g.chance(30) {
		c.Key, c.RangeEnd = g.keyRange()
	}
	return c
}

func (g *gen) branch(depth int) []*pb.RequestOp {
	var o []*pb.RequestOp
	for range g.r.IntN(5) {
		switch x := g.r.IntN(100); {
		case x < 35:
			o = append(o, opPut(g.putReq()))
		case x < 50:
			o = append(o, opDel(g.delReq(g.chance(80))))
		case x < 85 || depth >= 2:
			o = append(o, opRange(g.rangeReq()))
		default:
			o = append(o, opTxn(g.txnReq(depth+1)))
		}
	}
	return o
}

func (g *gen) txnReq(depth int) *pb.TxnRequest {
	r := &pb.TxnRequest{}
	for range g.r.IntN(4) {
		r.Compare = append(r.Compare, g.compare())
	}
	r.Success = g.branch(depth)
	r.Failure = g.branch(depth)
	return r
}

// hasFromKeyDelete reports a delete to the end of the keyspace anywhere in r.
func hasFromKeyDelete(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			switch v := op.Request.(type) {
			case *pb.RequestOp_RequestDeleteRange:
				if len(v.RequestDeleteRange.RangeEnd) == 1 && v.RequestDeleteRange.RangeEnd[0] == 0 {
					return true
				}
			case *pb.RequestOp_RequestTxn:
				if hasFromKeyDelete(v.RequestTxn) {
					return true
				}
			}
		}
	}
	return false
}

// dropPuts turns r's puts into reads of their keys. A delete to the end of the keyspace escapes
// etcd's duplicate-key check (its interval ends at "\x00"), so a transaction can delete a key
// and put it again, and etcd v3.6.8 mishandles both orders:
//   - a put with ignore_value or ignore_lease is checked against the state before the
//     transaction, so after such a delete it fails mid-way and etcd panics ("unexpected error
//     during txn with writes");
//   - compacting at the revision of a delete-then-put keeps only the tombstone's generation,
//     drops the new value from the backend, and the next read of the key is fatal ("range
//     failed to find revision pair").
//
// testTxn covers such transactions without compacting at their revision.
func dropPuts(r *pb.TxnRequest) {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			switch v := op.Request.(type) {
			case *pb.RequestOp_RequestPut:
				op.Request = &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: v.RequestPut.Key}}
			case *pb.RequestOp_RequestTxn:
				dropPuts(v.RequestTxn)
			}
		}
	}
}

func (g *gen) step() {
	p := g.p
	switch x := g.r.IntN(1000); {
	case x < 280:
		p.Put("put", g.putReq())
	case x < 430:
		p.Range("range", g.rangeReq())
	case x < 530:
		p.Delete("delete", g.delReq(g.chance(50)))
	case x < 800:
		r := g.txnReq(0)
		if hasFromKeyDelete(r) {
			dropPuts(r)
		}
		p.Txn("txn", r)
	case x < 825:
		p.Compact("compact", &pb.CompactionRequest{Revision: max(g.p.compactRev-1, 0) + g.r.Int64N(g.p.rev-max(g.p.compactRev-1, 0)+1), Physical: g.chance(50)})
	case x < 875:
		r := &pb.LeaseGrantRequest{TTL: []int64{300, 600, 900}[g.r.IntN(3)]}
		switch y := g.r.IntN(100); {
		case y < 45:
			g.explicit++
			r.ID = g.explicit
		case y < 50:
			r.ID = 1001 + g.r.Int64N(g.explicit-1000+1)
		case y < 53:
			r.TTL = 9_000_000_001
		}
		if id, err := p.LeaseGrant("lease grant", r); err == nil {
			g.leases = append(g.leases, id)
		}
	case x < 905:
		p.LeaseRevoke("lease revoke", &pb.LeaseRevokeRequest{ID: g.lease()})
	case x < 935:
		p.LeaseTimeToLive("lease time to live", &pb.LeaseTimeToLiveRequest{ID: g.lease(), Keys: g.chance(50)})
	case x < 945:
		p.LeaseLeases("lease list")
	case x < 980:
		r := &pb.WatchCreateRequest{PrevKv: g.chance(50)}
		r.Key, r.RangeEnd = g.keyRange()
		if g.chance(60) {
			// At most the current revision: a watcher waiting for a future one would hold up
			// the progress requests syncWatches relies on.
			lo := max(g.p.compactRev-2, 1)
			r.StartRevision = lo + g.r.Int64N(g.p.rev+1-lo)
		}
		if g.chance(10) {
			r.Filters = append(r.Filters, pb.WatchCreateRequest_NOPUT)
		}
		if g.chance(10) {
			r.Filters = append(r.Filters, pb.WatchCreateRequest_NODELETE)
		}
		if r.StartRevision > 0 && r.StartRevision < g.p.compactRev {
			p.watchAlone(fmt.Sprintf("watch below the compaction (%s)", p.phase), r)
		} else if id := g.ws.create("watch", r); id >= 0 {
			g.live = append(g.live, id)
		}
	default:
		if len(g.live) == 0 {
			return
		}
		i := g.r.IntN(len(g.live))
		id := g.live[i]
		g.live = append(g.live[:i], g.live[i+1:]...)
		g.ws.cancel("watch cancel", id)
	}
}
