package mvcc

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// readView is the committed state at the current revision, for read-only transactions. It is
// valid while its creator holds idxMu for reading and the transaction is open.
type readView struct {
	s         *Store
	revs      *bolt.Bucket
	rev       int64
	compactAt int64
}

func (v *readView) ascend(key, end []byte, fn func([]byte, []indexRev) bool) {
	v.s.idx.ascend(key, end, func(ki *keyIndex) bool { return fn(ki.key, ki.revs) })
}

func (v *readView) fetch(r revision) (record, error) { return fetchRecord(v.revs, r) }
func (v *readView) readRev() int64                   { return v.rev }
func (v *readView) compacted() int64                 { return v.compactAt }

func (v *readView) state(key []byte) keyState {
	if ki := v.s.idx.get(key); ki != nil {
		return ki.state
	}
	return keyState{}
}

// beginRead opens a read transaction; the caller holds idxMu, so the transaction includes every
// revision the index has published.
func (s *Store) beginRead() (*bolt.Tx, func(), error) {
	s.dbMu.RLock()
	tx, err := s.db.Begin(false)
	if err != nil {
		s.dbMu.RUnlock()
		return nil, nil, fmt.Errorf("starting a read transaction: %w", err)
	}
	return tx, func() { tx.Rollback(); s.dbMu.RUnlock() }, nil
}

// Range reads keys at the current or a past revision. The index is walked under idxMu; the
// values are read after releasing it, from a transaction begun while it was still held, so a
// large range never holds up the writer's publishing.
func (s *Store) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	s.idxMu.RLock()
	cur, compacted := s.Revs()
	rev, err := checkRev(r.Revision, cur, compacted)
	if err != nil {
		s.idxMu.RUnlock()
		return nil, err
	}
	v := &readView{s: s}
	refs, count := collectRange(v, r.Key, rangeEnd(r.RangeEnd), rev, rangePlan(r), r.CountOnly)
	tx, done, err := s.beginRead()
	s.idxMu.RUnlock()
	if err != nil {
		return nil, err
	}
	defer done()
	v.revs = tx.Bucket(bucketRevs)
	kvs, err := fetchKVs(v, refs, rangeDropsValues(r))
	if err != nil {
		return nil, err
	}
	return finishRange(r, kvs, count, cur), nil
}

// Put writes a key.
func (s *Store) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	op := &writeOp{kind: opPut, put: r}
	if err := s.submit(ctx, op); err != nil {
		return nil, err
	}
	return op.resp.(*pb.PutResponse), nil
}

// DeleteRange deletes a key or a range of keys.
func (s *Store) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	op := &writeOp{kind: opDelete, del: r}
	if err := s.submit(ctx, op); err != nil {
		return nil, err
	}
	return op.resp.(*pb.DeleteRangeResponse), nil
}

// Txn runs a transaction: read-only ones on the committed state, others through the writer.
func (s *Store) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if IsTxnReadOnly(r) {
		return s.readTxn(r)
	}
	op := &writeOp{kind: opTxn, txn: r}
	if err := s.submit(ctx, op); err != nil {
		return nil, err
	}
	return op.resp.(*pb.TxnResponse), nil
}

func (s *Store) readTxn(r *pb.TxnRequest) (*pb.TxnResponse, error) {
	s.idxMu.RLock()
	defer s.idxMu.RUnlock()
	tx, done, err := s.beginRead()
	if err != nil {
		return nil, err
	}
	defer done()
	cur, compacted := s.Revs()
	v := &readView{s: s, revs: tx.Bucket(bucketRevs), rev: cur, compactAt: compacted}
	resp, err := runTxn(v, r)
	if err != nil {
		return nil, err
	}
	resp.Header.Revision = cur
	return resp, nil
}

// Compact discards history before rev. With physical set it returns only once the discarded
// records are gone from the file; otherwise once the compaction is recorded.
func (s *Store) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	op := &writeOp{kind: opCompact, rev: r.Revision, physical: r.Physical}
	if err := s.submit(ctx, op); err != nil {
		return nil, err
	}
	return op.resp.(*pb.CompactionResponse), nil
}
