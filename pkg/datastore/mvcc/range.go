package mvcc

// Range evaluation, shared by plain reads, read-only transactions and the writer's batches:
// which revisions a range sees, and etcd's filters, sort orders and limits on the result.

import (
	"bytes"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// rangeSource is what range evaluation needs from a state: its keys with their revisions, and
// the records behind the revisions.
type rangeSource interface {
	ascend(key, end []byte, fn func(key []byte, revs []indexRev) bool)
	fetch(r revision) (record, error)
}

// rangeEnd turns a request's range_end into ascend's convention: empty means the single key,
// and "\x00" means no upper bound.
func rangeEnd(end []byte) []byte {
	switch {
	case len(end) == 0:
		return nil
	case len(end) == 1 && end[0] == 0:
		return []byte{}
	}
	return end
}

// checkRev resolves a requested revision (0 = current) against the current and compacted ones.
func checkRev(rev, current, compacted int64) (int64, error) {
	switch {
	case rev <= 0:
		return current, nil
	case rev > current:
		return 0, ErrFutureRev
	case rev < compacted:
		return 0, ErrCompacted
	}
	return rev, nil
}

// collectRange finds the revisions visible at rev in [key, end): at most limit of them (0 = all;
// none if countOnly), and how many keys there are in total.
func collectRange(src rangeSource, key, end []byte, rev, limit int64, countOnly bool) (refs []revision, count int64) {
	src.ascend(key, end, func(_ []byte, revs []indexRev) bool {
		r, ok := revAt(revs, rev)
		if !ok {
			return true
		}
		count++
		if !countOnly && (limit <= 0 || int64(len(refs)) < limit) {
			refs = append(refs, r.revision)
		}
		return true
	})
	return refs, count
}

func fetchRecord(b *bolt.Bucket, r revision) (record, error) {
	v := b.Get(revKey(r))
	if v == nil {
		return record{}, fmt.Errorf("revision %d.%d is missing from the log", r.main, r.sub)
	}
	rec, err := decodeRecord(v)
	if err != nil {
		return record{}, fmt.Errorf("revision %d.%d: %w", r.main, r.sub, err)
	}
	return rec, nil
}

func fetchKVs(src rangeSource, refs []revision, keysOnly bool) ([]*mvccpb.KeyValue, error) {
	kvs := make([]*mvccpb.KeyValue, 0, len(refs))
	for _, r := range refs {
		rec, err := src.fetch(r)
		if err != nil {
			return nil, err
		}
		kvs = append(kvs, recordToKV(rec, r.main, keysOnly))
	}
	return kvs, nil
}

// recordToKV copies a record out of transaction memory.
func recordToKV(rec record, modRev int64, keysOnly bool) *mvccpb.KeyValue {
	kv := &mvccpb.KeyValue{
		Key: append([]byte(nil), rec.key...), CreateRevision: rec.createRev, ModRevision: modRev,
		Version: rec.version, Lease: rec.lease,
	}
	if !keysOnly && len(rec.value) > 0 {
		kv.Value = append([]byte(nil), rec.value...)
	}
	return kv
}

// rangePlan is how many revisions to collect for a range request: etcd fetches everything when
// it must sort or filter, and one extra otherwise to know whether there are more.
func rangePlan(r *pb.RangeRequest) (limit int64) {
	if r.SortOrder != pb.RangeRequest_NONE || r.MinModRevision != 0 || r.MaxModRevision != 0 ||
		r.MinCreateRevision != 0 || r.MaxCreateRevision != 0 {
		return 0
	}
	if r.Limit > 0 {
		return r.Limit + 1
	}
	return 0
}

// finishRange filters, sorts and truncates kvs the way etcd does, and builds the response.
// headerRev is the view's current revision, which etcd reports even for reads of the past.
func finishRange(r *pb.RangeRequest, kvs []*mvccpb.KeyValue, count, headerRev int64) *pb.RangeResponse {
	prune := func(drop func(*mvccpb.KeyValue) bool) {
		j := 0
		for _, kv := range kvs {
			if !drop(kv) {
				kvs[j] = kv
				j++
			}
		}
		kvs = kvs[:j]
	}
	if r.MaxModRevision != 0 {
		prune(func(kv *mvccpb.KeyValue) bool { return kv.ModRevision > r.MaxModRevision })
	}
	if r.MinModRevision != 0 {
		prune(func(kv *mvccpb.KeyValue) bool { return kv.ModRevision < r.MinModRevision })
	}
	if r.MaxCreateRevision != 0 {
		prune(func(kv *mvccpb.KeyValue) bool { return kv.CreateRevision > r.MaxCreateRevision })
	}
	if r.MinCreateRevision != 0 {
		prune(func(kv *mvccpb.KeyValue) bool { return kv.CreateRevision < r.MinCreateRevision })
	}
	order := r.SortOrder
	if r.SortTarget != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE {
		// Results come in key order, so only a non-key target needs sorting by default.
		order = pb.RangeRequest_ASCEND
	} else if r.SortTarget == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND {
		order = pb.RangeRequest_NONE
	}
	if order != pb.RangeRequest_NONE {
		// sort.Sort, not a stable sort: keys that tie come out in the order etcd's sort.Sort
		// leaves them in, which is not key order once there are more than a dozen.
		sorter := kvSorter{kvs: kvs, less: sortLess(r.SortTarget)}
		if order == pb.RangeRequest_DESCEND {
			sort.Sort(sort.Reverse(sorter))
		} else {
			sort.Sort(sorter)
		}
	}
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: headerRev}, Count: count}
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs = kvs[:r.Limit]
		resp.More = true
	}
	if r.KeysOnly {
		for _, kv := range kvs {
			kv.Value = nil
		}
	}
	resp.Kvs = kvs
	return resp
}

type kvSorter struct {
	kvs  []*mvccpb.KeyValue
	less func(a, b *mvccpb.KeyValue) bool
}

func (s kvSorter) Len() int           { return len(s.kvs) }
func (s kvSorter) Swap(i, j int)      { s.kvs[i], s.kvs[j] = s.kvs[j], s.kvs[i] }
func (s kvSorter) Less(i, j int) bool { return s.less(s.kvs[i], s.kvs[j]) }

// rangeDropsValues says whether a range can skip reading values: keys_only, unless it sorts by
// value, which etcd does on the values before it drops them.
func rangeDropsValues(r *pb.RangeRequest) bool {
	return r.KeysOnly && r.SortTarget != pb.RangeRequest_VALUE
}

func sortLess(target pb.RangeRequest_SortTarget) func(a, b *mvccpb.KeyValue) bool {
	switch target {
	case pb.RangeRequest_VERSION:
		return func(a, b *mvccpb.KeyValue) bool { return a.Version < b.Version }
	case pb.RangeRequest_CREATE:
		return func(a, b *mvccpb.KeyValue) bool { return a.CreateRevision < b.CreateRevision }
	case pb.RangeRequest_MOD:
		return func(a, b *mvccpb.KeyValue) bool { return a.ModRevision < b.ModRevision }
	case pb.RangeRequest_VALUE:
		return func(a, b *mvccpb.KeyValue) bool { return bytes.Compare(a.Value, b.Value) < 0 }
	default:
		return func(a, b *mvccpb.KeyValue) bool { return bytes.Compare(a.Key, b.Key) < 0 }
	}
}
