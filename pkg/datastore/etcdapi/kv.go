package etcdapi

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/pkg/v3/adt"

	"github.com/ketch-k8s/ketch/pkg/datastore/mvcc"
)

type kvServer struct {
	pb.UnimplementedKVServer
	store *mvcc.Store
	hdr   header
	cfg   Config
}

func (s *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := checkRange(r); err != nil {
		return nil, err
	}
	resp, err := s.store.Range(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

func (s *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := checkPut(r); err != nil {
		return nil, err
	}
	if err := s.checkSize(r); err != nil {
		return nil, err
	}
	resp, err := s.store.Put(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

func (s *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if err := checkDelete(r); err != nil {
		return nil, err
	}
	if err := s.checkSize(r); err != nil {
		return nil, err
	}
	resp, err := s.store.DeleteRange(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

func (s *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := checkTxn(r, s.cfg.MaxTxnOps); err != nil {
		return nil, err
	}
	// Overlaps are checked after the shape, which bounds their cost.
	if _, _, err := checkIntervals(r.Success); err != nil {
		return nil, err
	}
	if _, _, err := checkIntervals(r.Failure); err != nil {
		return nil, err
	}
	if !mvcc.IsTxnReadOnly(r) {
		if err := s.checkSize(r); err != nil {
			return nil, err
		}
	}
	resp, err := s.store.Txn(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	// Only the top header: etcd leaves the nested responses' headers with just their revision
	// (and a nested transaction's with none), and clients see them so.
	s.hdr.fill(resp.Header)
	return resp, nil
}

func (s *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	resp, err := s.store.Compact(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

type sizer interface{ Size() int }

// checkSize refuses writes larger than the configured limit, with etcd's error.
func (s *kvServer) checkSize(r sizer) error {
	if r.Size() > s.cfg.MaxRequestBytes {
		return rpctypes.ErrGRPCRequestTooLarge
	}
	return nil
}

// The checks below are etcd's request validation (v3rpc/key.go), with nil sub-messages refused
// instead of dereferenced.

func checkRange(r *pb.RangeRequest) error {
	if r == nil || len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if _, ok := pb.RangeRequest_SortOrder_name[int32(r.SortOrder)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	if _, ok := pb.RangeRequest_SortTarget_name[int32(r.SortTarget)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	return nil
}

func checkPut(r *pb.PutRequest) error {
	if r == nil || len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if r.IgnoreValue && len(r.Value) != 0 {
		return rpctypes.ErrGRPCValueProvided
	}
	if r.IgnoreLease && r.Lease != 0 {
		return rpctypes.ErrGRPCLeaseProvided
	}
	return nil
}

func checkDelete(r *pb.DeleteRangeRequest) error {
	if r == nil || len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	return nil
}

func checkTxn(r *pb.TxnRequest, maxTxnOps int) error {
	if r == nil {
		return rpctypes.ErrGRPCKeyNotFound
	}
	opc := max(len(r.Compare), len(r.Success), len(r.Failure))
	if opc > maxTxnOps {
		return rpctypes.ErrGRPCTooManyOps
	}
	for _, c := range r.Compare {
		if c == nil || len(c.Key) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if err := checkRequestOp(op, maxTxnOps-opc); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkRequestOp(u *pb.RequestOp, maxTxnOps int) error {
	if u == nil {
		return rpctypes.ErrGRPCKeyNotFound
	}
	switch uv := u.Request.(type) {
	case *pb.RequestOp_RequestRange:
		return checkRange(uv.RequestRange)
	case *pb.RequestOp_RequestPut:
		return checkPut(uv.RequestPut)
	case *pb.RequestOp_RequestDeleteRange:
		return checkDelete(uv.RequestDeleteRange)
	case *pb.RequestOp_RequestTxn:
		return checkTxn(uv.RequestTxn, maxTxnOps)
	default:
		// An empty operation, as etcd reports it.
		return rpctypes.ErrGRPCKeyNotFound
	}
}

// checkIntervals refuses a transaction that writes the same key twice, or puts a key it also
// deletes, on any path it can take.
func checkIntervals(reqs []*pb.RequestOp) (map[string]struct{}, adt.IntervalTree, error) {
	dels := adt.NewIntervalTree()
	for _, req := range reqs {
		tv, ok := req.Request.(*pb.RequestOp_RequestDeleteRange)
		if !ok || tv.RequestDeleteRange == nil {
			continue
		}
		d := tv.RequestDeleteRange
		if len(d.RangeEnd) != 0 {
			dels.Insert(adt.NewStringAffineInterval(string(d.Key), string(d.RangeEnd)), struct{}{})
		} else {
			dels.Insert(adt.NewStringAffinePoint(string(d.Key)), struct{}{})
		}
	}
	puts := make(map[string]struct{})
	for _, req := range reqs {
		tv, ok := req.Request.(*pb.RequestOp_RequestTxn)
		if !ok || tv.RequestTxn == nil {
			continue
		}
		putsThen, delsThen, err := checkIntervals(tv.RequestTxn.Success)
		if err != nil {
			return nil, dels, err
		}
		putsElse, delsElse, err := checkIntervals(tv.RequestTxn.Failure)
		if err != nil {
			return nil, dels, err
		}
		for k := range putsThen {
			if _, dup := puts[k]; dup || dels.Intersects(adt.NewStringAffinePoint(k)) {
				return nil, dels, rpctypes.ErrGRPCDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for k := range putsElse {
			// A key put by both branches is fine: only one of them runs.
			if _, dup := puts[k]; dup {
				if _, inThen := putsThen[k]; !inThen {
					return nil, dels, rpctypes.ErrGRPCDuplicateKey
				}
			}
			if dels.Intersects(adt.NewStringAffinePoint(k)) {
				return nil, dels, rpctypes.ErrGRPCDuplicateKey
			}
			puts[k] = struct{}{}
		}
		dels.Union(delsThen, adt.NewStringAffineInterval("\x00", ""))
		dels.Union(delsElse, adt.NewStringAffineInterval("\x00", ""))
	}
	for _, req := range reqs {
		tv, ok := req.Request.(*pb.RequestOp_RequestPut)
		if !ok || tv.RequestPut == nil {
			continue
		}
		k := string(tv.RequestPut.Key)
		if _, dup := puts[k]; dup || dels.Intersects(adt.NewStringAffinePoint(k)) {
			return nil, dels, rpctypes.ErrGRPCDuplicateKey
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}
