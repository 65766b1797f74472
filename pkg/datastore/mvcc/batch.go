package mvcc

// A batch is the group of write requests one writer transaction applies: what each request
// does (put, delete, transaction; compaction and leases are in compact.go and lease.go), the
// revisions and events it makes, and the store as the batch sees it meanwhile.

import (
	"fmt"
	"runtime/debug"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"k8s.io/klog/v2"
)

// pendingKey is a key the batch changed, as the batch sees it.
type pendingKey struct {
	key       []byte
	ki        *keyIndex // the committed entry, nil for a new key
	origLease int64     // lease before the batch, for attachment bookkeeping
	appended  []indexRev
	state     keyState
}

func (p *pendingKey) last() (indexRev, bool) {
	if n := len(p.appended); n > 0 {
		return p.appended[n-1], true
	}
	if p.ki != nil && len(p.ki.revs) > 0 {
		return p.ki.revs[len(p.ki.revs)-1], true
	}
	return indexRev{}, false
}

// batch is the writer's view of the store while it applies a group of requests: the committed
// state plus the batch's own changes, read and written through one bbolt write transaction.
type batch struct {
	s                *Store
	tx               *bolt.Tx
	revs, meta, leas *bolt.Bucket
	startRev, rev    int64
	compactRev       int64
	pending          map[string]*pendingKey
	revEvents        []revEvents
	wantPrev         bool
	dirty            bool
	recordDelta      int64 // records added less records deleted, for metaRecords
	err              error // a failure of the transaction itself; fails the whole batch

	leaseGrants  map[int64]*lease
	leaseRevokes map[int64]bool
	leaseRenews  map[int64]time.Time

	// The write transaction being applied: its revision, the next sub-revision, whether it
	// changed anything, and its events for watchers. A transaction whose events outgrow the event
	// log keeps none: watchers read that revision from the file instead.
	txnRev        int64
	txnSub        int32
	txnChanged    bool
	txnEvents     []*mvccpb.Event
	txnEventBytes int
}

func newBatch(s *Store, tx *bolt.Tx) *batch {
	rev, compacted := s.Revs()
	revs := tx.Bucket(bucketRevs)
	// Revisions only ever grow, so pages split by appending can be filled; bbolt's default of
	// half-full pages would double the file and the pages written per commit.
	revs.FillPercent = 0.9
	return &batch{
		s: s, tx: tx,
		revs: revs, meta: tx.Bucket(bucketMeta), leas: tx.Bucket(bucketLeases),
		startRev: rev, rev: rev, compactRev: compacted,
		pending:      make(map[string]*pendingKey),
		wantPrev:     s.prevKVWatchers.Load() > 0,
		leaseGrants:  make(map[int64]*lease),
		leaseRevokes: make(map[int64]bool),
		leaseRenews:  make(map[int64]time.Time),
	}
}

// safeApply applies op, turning a panic into a failure of the whole batch: the transaction is
// rolled back, so a request that trips a bug cannot leave half its changes behind.
func (b *batch) safeApply(op *writeOp) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			klog.ErrorS(nil, "Panic applying a write; failing its batch", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("internal error applying a write: %v", r)
			b.setErr(err)
		}
	}()
	return b.apply(op)
}

// setErr records the first failure of the transaction itself.
func (b *batch) setErr(err error) {
	if b.err == nil {
		b.err = err
	}
}

func (b *batch) apply(op *writeOp) (any, error) {
	switch op.kind {
	case opPut:
		return b.putRequest(op.put)
	case opDelete:
		return b.deleteRequest(op.del)
	case opTxn:
		return b.txnRequest(op.txn)
	case opCompact:
		if err := b.compact(op.rev); err != nil {
			return nil, err
		}
		return &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: b.rev}}, nil
	case opLeaseGrant:
		return b.leaseGrant(op.leaseID, op.leaseTTL)
	case opLeaseRevoke:
		if err := b.leaseRevoke(op.leaseID); err != nil {
			return nil, err
		}
		return &pb.LeaseRevokeResponse{Header: &pb.ResponseHeader{Revision: b.rev}}, nil
	case opLeaseRenew:
		return b.leaseRenew(op.leaseID)
	case opLeaseExpire:
		b.leaseExpire(op.leaseIDs)
		return nil, nil
	}
	return nil, fmt.Errorf("unknown write op %d", op.kind)
}

// beginTxn and endTxn bracket one write transaction: every change between them shares one
// revision, which is only consumed if something changed.
func (b *batch) beginTxn() {
	b.txnRev, b.txnSub, b.txnChanged, b.txnEvents, b.txnEventBytes = b.rev+1, 0, false, nil, 0
}

func (b *batch) endTxn() {
	if b.txnChanged {
		b.rev = b.txnRev
		b.revEvents = append(b.revEvents, revEvents{rev: b.txnRev, events: b.txnEvents, prevKnown: b.wantPrev, omitted: b.txnEvents == nil})
		b.dirty = true
	}
	b.txnEvents = nil
}

// readRev is the revision a read inside the current transaction sees: its own changes count.
func (b *batch) readRev() int64 {
	if b.txnChanged {
		return b.txnRev
	}
	return b.rev
}

func (b *batch) compacted() int64 { return b.compactRev }

func (b *batch) touch(key []byte) *pendingKey {
	if p, ok := b.pending[string(key)]; ok {
		return p
	}
	p := &pendingKey{key: key, ki: b.s.idx.get(key)}
	if p.ki != nil {
		p.state = p.ki.state
		p.key = p.ki.key
	}
	p.origLease = p.state.lease
	b.pending[string(key)] = p
	return p
}

func (b *batch) state(key []byte) keyState {
	if p, ok := b.pending[string(key)]; ok {
		return p.state
	}
	if ki := b.s.idx.get(key); ki != nil {
		return ki.state
	}
	return keyState{}
}

func (b *batch) nextRevision() revision {
	r := revision{main: b.txnRev, sub: b.txnSub}
	b.txnSub++
	return r
}

func (b *batch) putRecord(r revision, rec *record) {
	if err := b.revs.Put(revKey(r), rec.encode()); err != nil {
		b.setErr(fmt.Errorf("storing revision %d: %w", r.main, err))
	}
	b.recordDelta++
}

// put writes key inside the current transaction and returns the previous value if asked.
func (b *batch) put(key, value []byte, leaseID int64, wantPrev bool) *mvccpb.KeyValue {
	p := b.touch(key)
	prev := p.state
	last, _ := p.last()
	r := b.nextRevision()
	rec := record{key: p.key, value: value, lease: leaseID, createRev: r.main, version: 1}
	if prev.exists() {
		rec.createRev, rec.version, rec.prevModRev, rec.prevSub = prev.createRev, prev.version+1, last.main, last.sub
	}
	var prevKV *mvccpb.KeyValue
	if prev.exists() && (wantPrev || b.wantPrev) {
		prevKV = b.kvAt(last.revision)
	}
	b.putRecord(r, &rec)
	p.appended = append(p.appended, indexRev{revision: r})
	p.state = keyState{modRev: r.main, createRev: rec.createRev, version: rec.version, lease: leaseID}
	ev := &mvccpb.Event{Type: mvccpb.PUT, Kv: &mvccpb.KeyValue{
		Key: p.key, Value: value, CreateRevision: rec.createRev, ModRevision: r.main, Version: rec.version, Lease: leaseID,
	}}
	if b.wantPrev {
		ev.PrevKv = prevKV
	}
	b.addEvent(ev)
	return prevKV
}

// addEvent records a change of the current transaction for watchers.
func (b *batch) addEvent(ev *mvccpb.Event) {
	b.txnChanged = true
	if b.txnEventBytes > b.s.events.maxBytes {
		return
	}
	b.txnEventBytes += eventSize(ev)
	if b.txnEventBytes > b.s.events.maxBytes {
		b.txnEvents = nil
		return
	}
	b.txnEvents = append(b.txnEvents, ev)
}

// del deletes a key that exists inside the current transaction and returns its last value if
// asked.
func (b *batch) del(key []byte, wantPrev bool) *mvccpb.KeyValue {
	p := b.touch(key)
	last, _ := p.last()
	var prevKV *mvccpb.KeyValue
	if wantPrev || b.wantPrev {
		prevKV = b.kvAt(last.revision)
	}
	r := b.nextRevision()
	b.putRecord(r, &record{tombstone: true, key: p.key, prevModRev: last.main, prevSub: last.sub})
	p.appended = append(p.appended, indexRev{revision: r, tombstone: true})
	p.state = keyState{}
	ev := &mvccpb.Event{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: p.key, ModRevision: r.main}}
	if b.wantPrev {
		ev.PrevKv = prevKV
		if last.main == r.main {
			// The transaction put the key before deleting it (a delete to the end of the
			// keyspace escapes the duplicate-key check): watchers get the key as it was before.
			ev.PrevKv = b.kvBefore(last.revision)
		}
	}
	b.addEvent(ev)
	return prevKV
}

// kvAt reads the key-value written at r, copied out of the transaction.
func (b *batch) kvAt(r revision) *mvccpb.KeyValue {
	rec, err := b.fetch(r)
	if err != nil {
		b.setErr(err)
		return nil
	}
	return recordToKV(rec, r.main, false)
}

func (b *batch) fetch(r revision) (record, error) { return fetchRecord(b.revs, r) }

// kvBefore reads the key-value that the key written at r had before r's revision.
func (b *batch) kvBefore(r revision) *mvccpb.KeyValue {
	rec, err := b.fetch(r)
	if err != nil {
		b.setErr(err)
		return nil
	}
	return prevKV(b.revs, rec, r.main)
}

// ascend visits the keys in [key, end) as the batch sees them: committed revisions followed by
// the batch's own.
func (b *batch) ascend(key, end []byte, fn func(key []byte, revs []indexRev) bool) {
	var fresh []*pendingKey // keys the batch created, which the index does not have yet
	for _, p := range b.pending {
		if p.ki == nil && inRange(p.key, key, end) {
			fresh = append(fresh, p)
		}
	}
	sort.Slice(fresh, func(i, j int) bool { return string(fresh[i].key) < string(fresh[j].key) })
	emit := func(k []byte, revs []indexRev) bool {
		for len(fresh) > 0 && string(fresh[0].key) < string(k) {
			if !fn(fresh[0].key, fresh[0].appended) {
				return false
			}
			fresh = fresh[1:]
		}
		return fn(k, revs)
	}
	cont := true
	b.s.idx.ascend(key, end, func(ki *keyIndex) bool {
		revs := ki.revs
		if p, ok := b.pending[string(ki.key)]; ok && len(p.appended) > 0 {
			revs = append(append([]indexRev(nil), ki.revs...), p.appended...)
		}
		cont = emit(ki.key, revs)
		return cont
	})
	for cont && len(fresh) > 0 {
		cont = fn(fresh[0].key, fresh[0].appended)
		fresh = fresh[1:]
	}
}

// liveKeys returns the keys in [key, end) that exist at the batch's latest state, in order.
func (b *batch) liveKeys(key, end []byte) [][]byte {
	var keys [][]byte
	b.ascend(key, end, func(k []byte, revs []indexRev) bool {
		if n := len(revs); n > 0 && !revs[n-1].tombstone {
			keys = append(keys, k)
		}
		return true
	})
	return keys
}

func (b *batch) putRequest(r *pb.PutRequest) (*pb.PutResponse, error) {
	// A plain put checks its lease first, a put in a transaction its key first (checkPut): etcd
	// does, and a request failing both checks gets its error accordingly.
	if r.Lease != 0 && !b.leaseExists(r.Lease) {
		return nil, ErrLeaseNotFound
	}
	if err := b.checkPut(r); err != nil {
		return nil, err
	}
	b.beginTxn()
	resp := b.execPut(r)
	b.endTxn()
	resp.Header.Revision = b.rev
	return resp, nil
}

func (b *batch) checkPut(r *pb.PutRequest) error {
	if r.IgnoreValue || r.IgnoreLease {
		if !b.state(r.Key).exists() {
			return ErrKeyNotFound
		}
	}
	if r.Lease != 0 && !b.leaseExists(r.Lease) {
		return ErrLeaseNotFound
	}
	return nil
}

func (b *batch) execPut(r *pb.PutRequest) *pb.PutResponse {
	value, leaseID := r.Value, r.Lease
	if r.IgnoreValue || r.IgnoreLease {
		last, _ := b.touch(r.Key).last()
		if cur := b.kvAt(last.revision); cur != nil {
			if r.IgnoreValue {
				value = cur.Value
			}
			if r.IgnoreLease {
				leaseID = cur.Lease
			}
		}
	}
	prev := b.put(r.Key, value, leaseID, r.PrevKv)
	resp := &pb.PutResponse{Header: &pb.ResponseHeader{Revision: b.txnRev}}
	if r.PrevKv {
		resp.PrevKv = prev
	}
	return resp
}

func (b *batch) deleteRequest(r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	b.beginTxn()
	resp := b.execDelete(r)
	b.endTxn()
	resp.Header.Revision = b.rev
	return resp, nil
}

func (b *batch) execDelete(r *pb.DeleteRangeRequest) *pb.DeleteRangeResponse {
	resp := &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{}}
	for _, k := range b.liveKeys(r.Key, rangeEnd(r.RangeEnd)) {
		prev := b.del(k, r.PrevKv)
		resp.Deleted++
		if r.PrevKv && prev != nil {
			resp.PrevKvs = append(resp.PrevKvs, prev)
		}
	}
	resp.Header.Revision = b.readRev()
	return resp
}

// txnRequest runs a write transaction in the batch.
func (b *batch) txnRequest(rt *pb.TxnRequest) (*pb.TxnResponse, error) {
	b.beginTxn()
	resp, err := runTxn(b, rt)
	if err != nil {
		if b.txnChanged {
			// Checks run before any change, so this is a fault mid-way; never commit half a txn.
			b.setErr(fmt.Errorf("transaction failed after it changed keys: %w", err))
		}
		b.txnEvents, b.txnChanged = nil, false
		return nil, err
	}
	b.endTxn()
	resp.Header.Revision = b.rev
	return resp, nil
}
