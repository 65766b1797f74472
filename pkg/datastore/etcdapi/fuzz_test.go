package etcdapi

import (
	"context"
	"sync"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/ketch-k8s/ketch/pkg/datastore/mvcc"
)

// FuzzRequests feeds arbitrary bytes, decoded as each kind of request the KV and Lease services
// take, to the handlers. No input may panic, and the store must stay consistent: its revision
// never goes back and a full read always succeeds.
//
//	go test ./pkg/datastore/etcdapi -run '^$' -fuzz FuzzRequests -fuzztime 60s
func FuzzRequests(f *testing.F) {
	seed := func(kind byte, m interface{ Marshal() ([]byte, error) }) {
		b, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(kind, b)
	}
	seed(0, &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, Limit: 2, SortOrder: pb.RangeRequest_DESCEND})
	seed(1, &pb.PutRequest{Key: []byte("a"), Value: []byte("v"), PrevKv: true})
	seed(2, &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), PrevKv: true})
	seed(3, &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte("a"), Target: pb.Compare_MOD, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_ModRevision{ModRevision: 2}}},
		Success: []*pb.RequestOp{putOp("a", "1"), {Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: []*pb.RequestOp{putOp("b", "2")}}}}},
		Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("a")}}}},
	})
	seed(4, &pb.CompactionRequest{Revision: 3})
	seed(5, &pb.LeaseGrantRequest{TTL: 30})
	seed(6, &pb.LeaseRevokeRequest{ID: 1})

	var once sync.Once
	var kv *kvServer
	var lease *leaseServer
	f.Fuzz(func(t *testing.T, kind byte, data []byte) {
		once.Do(func() {
			store, err := mvcc.Open(mvcc.Options{Path: t.TempDir() + "/fuzz.db"})
			if err != nil {
				t.Fatal(err)
			}
			h := header{store: store}
			cfg := Config{}
			cfg.setDefaults()
			kv = &kvServer{store: store, hdr: h, cfg: cfg}
			lease = &leaseServer{store: store, hdr: h}
		})
		ctx := context.Background()
		before := kv.store.Rev()
		switch kind % 7 {
		case 0:
			var r pb.RangeRequest
			if r.Unmarshal(data) == nil {
				kv.Range(ctx, &r)
			}
		case 1:
			var r pb.PutRequest
			if r.Unmarshal(data) == nil {
				kv.Put(ctx, &r)
			}
		case 2:
			var r pb.DeleteRangeRequest
			if r.Unmarshal(data) == nil {
				kv.DeleteRange(ctx, &r)
			}
		case 3:
			var r pb.TxnRequest
			if r.Unmarshal(data) == nil {
				kv.Txn(ctx, &r)
			}
		case 4:
			var r pb.CompactionRequest
			if r.Unmarshal(data) == nil {
				kv.Compact(ctx, &r)
			}
		case 5:
			var r pb.LeaseGrantRequest
			if r.Unmarshal(data) == nil {
				lease.LeaseGrant(ctx, &r)
			}
		case 6:
			var r pb.LeaseRevokeRequest
			if r.Unmarshal(data) == nil {
				lease.LeaseRevoke(ctx, &r)
			}
		}
		if after := kv.store.Rev(); after < before {
			t.Fatalf("revision went back from %d to %d", before, after)
		}
		if _, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}); err != nil {
			t.Fatalf("full read failed after a fuzzed request: %v", err)
		}
	})
}
