package mvcc

import (
	"bytes"
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// txnView is the state a transaction runs against: the committed state at one revision for
// read-only transactions, or the writer's batch.
type txnView interface {
	rangeSource
	// readRev is the revision a read with no revision sees.
	readRev() int64
	compacted() int64
	// state is a key's latest state in the view.
	state(key []byte) keyState
}

// txnWriter is a txnView that can also write: the writer's batch.
type txnWriter interface {
	txnView
	checkPut(r *pb.PutRequest) error
	execPut(r *pb.PutRequest) *pb.PutResponse
	execDelete(r *pb.DeleteRangeRequest) *pb.DeleteRangeResponse
}

var errWriteInReadView = errors.New("a read-only transaction tried to write")

// IsTxnReadOnly reports whether rt has only ranges in every branch, nested ones included.
func IsTxnReadOnly(rt *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{rt.Success, rt.Failure} {
		for _, op := range ops {
			switch tv := op.Request.(type) {
			case *pb.RequestOp_RequestRange:
			case *pb.RequestOp_RequestTxn:
				if tv.RequestTxn != nil && !IsTxnReadOnly(tv.RequestTxn) {
					return false
				}
			default:
				return false
			}
		}
	}
	return true
}

// runTxn evaluates every compare first (nested ones included, all against the state before the
// transaction, as etcd does), checks the chosen operations, then executes them.
func runTxn(v txnView, rt *pb.TxnRequest) (*pb.TxnResponse, error) {
	path := compareToPath(v, rt, nil)
	if _, err := checkTxn(v, rt, path); err != nil {
		return nil, err
	}
	resp, _, err := execTxn(v, rt, path)
	return resp, err
}

func branch(rt *pb.TxnRequest, succeeded bool) []*pb.RequestOp {
	if succeeded {
		return rt.Success
	}
	return rt.Failure
}

// compareToPath records, in execution order, which branch each transaction takes.
func compareToPath(v txnView, rt *pb.TxnRequest, path []bool) []bool {
	ok := applyCompares(v, rt.Compare)
	path = append(path, ok)
	for _, op := range branch(rt, ok) {
		if tv, isTxn := op.Request.(*pb.RequestOp_RequestTxn); isTxn && tv.RequestTxn != nil {
			path = compareToPath(v, tv.RequestTxn, path)
		}
	}
	return path
}

func checkTxn(v txnView, rt *pb.TxnRequest, path []bool) ([]bool, error) {
	ok := path[0]
	path = path[1:]
	for _, op := range branch(rt, ok) {
		var err error
		switch tv := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			if tv.RequestRange != nil {
				err = checkTxnRangeRev(tv.RequestRange.Revision, v.readRev(), v.compacted())
			}
		case *pb.RequestOp_RequestPut:
			w, isWriter := v.(txnWriter)
			switch {
			case !isWriter:
				err = errWriteInReadView
			case tv.RequestPut != nil:
				err = w.checkPut(tv.RequestPut)
			}
		case *pb.RequestOp_RequestDeleteRange:
			if _, isWriter := v.(txnWriter); !isWriter {
				err = errWriteInReadView
			}
		case *pb.RequestOp_RequestTxn:
			if tv.RequestTxn != nil {
				path, err = checkTxn(v, tv.RequestTxn, path)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return path, nil
}

// checkTxnRangeRev is etcd's check of a transaction's range (etcdserver/txn checkRange). Unlike
// a plain range, it compares a negative revision with the compacted one, which etcd takes as -1
// until the first compaction: so -1 passes on a store never compacted, and anything lower, or
// any negative revision once compacted, is a compacted revision.
func checkTxnRangeRev(rev, current, compacted int64) error {
	first := compacted
	if first == 0 {
		first = -1
	}
	switch {
	case rev == 0:
		return nil
	case rev > current:
		return ErrFutureRev
	case rev < first:
		return ErrCompacted
	}
	return nil
}

func execTxn(v txnView, rt *pb.TxnRequest, path []bool) (*pb.TxnResponse, []bool, error) {
	ok := path[0]
	path = path[1:]
	ops := branch(rt, ok)
	resp := &pb.TxnResponse{Header: &pb.ResponseHeader{}, Succeeded: ok, Responses: make([]*pb.ResponseOp, len(ops))}
	for i, op := range ops {
		out := &pb.ResponseOp{}
		switch tv := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			if tv.RequestRange == nil {
				break
			}
			rr, err := execRange(v, tv.RequestRange)
			if err != nil {
				return nil, nil, err
			}
			out.Response = &pb.ResponseOp_ResponseRange{ResponseRange: rr}
		case *pb.RequestOp_RequestPut:
			if tv.RequestPut == nil {
				break
			}
			out.Response = &pb.ResponseOp_ResponsePut{ResponsePut: v.(txnWriter).execPut(tv.RequestPut)}
		case *pb.RequestOp_RequestDeleteRange:
			if tv.RequestDeleteRange == nil {
				break
			}
			out.Response = &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: v.(txnWriter).execDelete(tv.RequestDeleteRange)}
		case *pb.RequestOp_RequestTxn:
			if tv.RequestTxn == nil {
				break
			}
			sub, rest, err := execTxn(v, tv.RequestTxn, path)
			if err != nil {
				return nil, nil, err
			}
			path = rest
			out.Response = &pb.ResponseOp_ResponseTxn{ResponseTxn: sub}
		}
		resp.Responses[i] = out
	}
	return resp, path, nil
}

// execRange runs a range inside a transaction, where the view is already consistent.
func execRange(v txnView, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	rev, err := checkRev(r.Revision, v.readRev(), v.compacted())
	if err != nil {
		return nil, err
	}
	refs, count := collectRange(v, r.Key, rangeEnd(r.RangeEnd), rev, rangePlan(r), r.CountOnly)
	kvs, err := fetchKVs(v, refs, rangeDropsValues(r))
	if err != nil {
		return nil, err
	}
	return finishRange(r, kvs, count, v.readRev()), nil
}

func applyCompares(v txnView, cmps []*pb.Compare) bool {
	for _, c := range cmps {
		if c == nil || !applyCompare(v, c) {
			return false
		}
	}
	return true
}

// applyCompare follows etcd: a compare over a range holds only if it holds for every key in it;
// on no key at all it compares against an empty key-value, except that a value compare fails.
func applyCompare(v txnView, c *pb.Compare) bool {
	end := rangeEnd(c.RangeEnd)
	if end == nil && c.Target != pb.Compare_VALUE {
		st := v.state(c.Key)
		return compareKV(c, &mvccpb.KeyValue{CreateRevision: st.createRev, ModRevision: st.modRev, Version: st.version, Lease: st.lease})
	}
	refs, _ := collectRange(v, c.Key, end, v.readRev(), 0, false)
	if len(refs) == 0 {
		if c.Target == pb.Compare_VALUE {
			return false
		}
		return compareKV(c, &mvccpb.KeyValue{})
	}
	for _, r := range refs {
		rec, err := v.fetch(r)
		if err != nil {
			return false
		}
		kv := mvccpb.KeyValue{Value: rec.value, CreateRevision: rec.createRev, ModRevision: r.main, Version: rec.version, Lease: rec.lease}
		if !compareKV(c, &kv) {
			return false
		}
	}
	return true
}

func compareKV(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var result int
	switch c.Target {
	case pb.Compare_VALUE:
		result = bytes.Compare(kv.Value, c.GetValue())
	case pb.Compare_CREATE:
		result = cmpInt(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		result = cmpInt(kv.ModRevision, c.GetModRevision())
	case pb.Compare_VERSION:
		result = cmpInt(kv.Version, c.GetVersion())
	case pb.Compare_LEASE:
		result = cmpInt(kv.Lease, c.GetLease())
	}
	switch c.Result {
	case pb.Compare_EQUAL:
		return result == 0
	case pb.Compare_NOT_EQUAL:
		return result != 0
	case pb.Compare_GREATER:
		return result > 0
	case pb.Compare_LESS:
		return result < 0
	}
	return true
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
