package mvcc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sort"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"k8s.io/klog/v2"
)

const (
	// maxBatchOps bounds one group commit, so one batch's latency stays bounded under load.
	maxBatchOps = 512
	// Compaction runs in steps between batches, bounded so that it never stalls reads or writes
	// for long: an index step holds the index lock for a few thousand keys at most, a batch that
	// carries requests takes few deletions along, and between steps on an idle store the writer
	// pauses, so a request arriving then waits for one small step at most.
	compactStepKeys        = 2000
	compactStepKeysWithOps = 500
	compactDeletesWithOps  = 128
	compactDeletesWhenIdle = 512
	compactPause           = time.Millisecond
)

type opKind int

const (
	opPut opKind = iota
	opDelete
	opTxn
	opCompact
	opLeaseGrant
	opLeaseRevoke
	opLeaseRenew
	opLeaseExpire
)

// writeOp is one request to the writer and, once done is closed, its result.
type writeOp struct {
	kind     opKind
	put      *pb.PutRequest
	del      *pb.DeleteRangeRequest
	txn      *pb.TxnRequest
	rev      int64   // opCompact
	physical bool    // opCompact: answer only once the compacted records are gone
	leaseID  int64   // opLeaseGrant, opLeaseRevoke, opLeaseRenew
	leaseTTL int64   // opLeaseGrant
	leaseIDs []int64 // opLeaseExpire

	resp any
	err  error
	done chan struct{}
}

// ErrClosed is returned for requests made after Close.
var ErrClosed = errors.New("datastore is shutting down")

// submit hands op to the writer and waits for its result. If ctx ends first the op may still be
// applied, as with any request whose answer was lost.
func (s *Store) submit(ctx context.Context, op *writeOp) error {
	if err := s.writeErr.Load(); err != nil {
		return *err
	}
	op.done = make(chan struct{})
	select {
	case s.writes <- op:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return ErrClosed
	}
	select {
	case <-op.done:
		return op.err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return ErrClosed
	}
}

// writer is the state owned by the writer goroutine.
type writer struct {
	s *Store
	// job is the compaction in progress, if any.
	job *compactJob
	// autoCompact is a compaction the history cap asked for, started with the next batch.
	autoCompact int64
	// concurrency estimates how many clients are writing: the recent peak batch size, decaying
	// over a few dozen batches.
	concurrency float64
	gather      *time.Timer
	pause       *time.Timer
}

type compactJob struct {
	rev       int64
	cursor    []byte // first key the index pass has not visited
	indexDone bool
	// dropped are records the index pass released that are not yet deleted from the file. They
	// are deleted once the pass is done, in revision order, so that each commit's deletions sit
	// in a few neighbouring pages.
	dropped []revision
	waiters []*writeOp
}

func (s *Store) runWriter() {
	w := &writer{s: s}
	s.dbMu.RLock()
	var done int64
	err := s.db.View(func(tx *bolt.Tx) error { done = getInt(tx.Bucket(bucketMeta), metaCompactDone); return nil })
	s.dbMu.RUnlock()
	if c := s.compactRev.Load(); err == nil && done < c {
		// A compaction was interrupted by a restart: finish it.
		w.job = &compactJob{rev: c}
	}
	for {
		ops, ok := w.collect()
		if !ok {
			w.failQueued()
			return
		}
		if w.job != nil && !w.job.indexDone {
			w.compactIndexStep(len(ops) > 0)
		}
		w.runBatch(ops)
	}
}

// collect waits for requests and takes every one already queued. While compaction has work
// left it waits only compactPause, so compaction proceeds on an idle store too.
func (w *writer) collect() ([]*writeOp, bool) {
	var ops []*writeOp
	if w.autoCompact > 0 {
		ops = append(ops, &writeOp{kind: opCompact, rev: w.autoCompact, done: make(chan struct{})})
		klog.V(2).InfoS("Compacting history to the configured limit", "revision", w.autoCompact)
		w.autoCompact = 0
	}
	if len(ops) == 0 {
		var pause <-chan time.Time
		if w.job != nil {
			pause = w.pauseTimer()
		}
		select {
		case op := <-w.s.writes:
			ops = append(ops, op)
		case <-pause:
		case <-w.s.ctx.Done():
			return nil, false
		}
	}
	for len(ops) < maxBatchOps {
		select {
		case op := <-w.s.writes:
			ops = append(ops, op)
			continue
		default:
		}
		break
	}
	w.gatherStragglers(&ops)
	w.concurrency = max(float64(len(ops)), w.concurrency*0.95)
	return ops, true
}

func (w *writer) pauseTimer() <-chan time.Time {
	if w.pause == nil {
		w.pause = time.NewTimer(compactPause)
	} else {
		w.pause.Reset(compactPause)
	}
	return w.pause.C
}

// maxGather bounds how long a batch waits for more requests.
const maxGather = 200 * time.Microsecond

// gatherStragglers waits a moment for more requests when fewer are queued than clients seem to
// be writing: the clients answered by the last batch are usually about to write again, and every
// commit they share saves two fsyncs and the CPU of a commit. A lone client never waits.
func (w *writer) gatherStragglers(ops *[]*writeOp) {
	want := min(int(w.concurrency), maxBatchOps)
	if len(*ops) == 0 || len(*ops) >= want {
		return
	}
	if w.gather == nil {
		w.gather = time.NewTimer(maxGather)
	} else {
		w.gather.Reset(maxGather)
	}
	defer w.gather.Stop()
	for len(*ops) < want {
		select {
		case op := <-w.s.writes:
			*ops = append(*ops, op)
		case <-w.gather.C:
			return
		}
	}
}

func (w *writer) failQueued() {
	for {
		select {
		case op := <-w.s.writes:
			op.err = ErrClosed
			close(op.done)
		default:
			if w.job != nil {
				for _, op := range w.job.waiters {
					op.err = ErrClosed
					close(op.done)
				}
			}
			return
		}
	}
}

// runBatch applies ops in one bbolt transaction, commits it, and only then publishes the
// changes and answers the requests.
func (w *writer) runBatch(ops []*writeOp) {
	b, deleted, err := w.applyAndCommit(ops)
	if err != nil || b == nil {
		finish(ops, err)
		return
	}
	w.publish(b)
	if w.job != nil {
		w.job.dropped = w.job.dropped[deleted:]
		if w.job.indexDone && len(w.job.dropped) == 0 {
			klog.V(2).InfoS("Compaction finished", "revision", w.job.rev)
			finish(w.job.waiters, nil)
			w.job = nil
		}
	}
	for _, op := range ops {
		if op.kind == opCompact && op.err == nil {
			w.startCompaction(op)
			continue
		}
		close(op.done)
	}
	if h := w.s.opts.HistoryRevisions; h > 0 && w.job == nil {
		rev, compacted := w.s.Revs()
		if rev-compacted > h+h/10 {
			w.autoCompact = rev - h
		}
	}
}

// applyAndCommit applies ops and a step of compaction's deletions in one transaction and
// commits it. It returns the committed batch and how many compacted records it deleted, or a
// nil batch if nothing changed (every op then already has its result). An error fails every op.
func (w *writer) applyAndCommit(ops []*writeOp) (b *batch, deleted int, err error) {
	s := w.s
	if err := s.writeErr.Load(); err != nil {
		return nil, 0, *err
	}
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	tx, err := s.db.Begin(true)
	if err != nil {
		return nil, 0, fmt.Errorf("starting a write transaction: %w", err)
	}
	committing := false
	defer func() {
		if !committing {
			tx.Rollback()
		}
	}()
	b = newBatch(s, tx)
	for _, op := range ops {
		op.resp, op.err = b.safeApply(op)
	}
	if w.job != nil && w.job.indexDone {
		deleted = min(len(w.job.dropped), compactDeletesWhenIdle)
		if len(ops) > 0 {
			deleted = min(deleted, compactDeletesWithOps)
		}
		if err := b.deleteRecords(w.job.dropped[:deleted]); err != nil {
			return nil, 0, err
		}
		if deleted == len(w.job.dropped) {
			b.dirty = true
			b.setErr(putInt(b.meta, metaCompactDone, w.job.rev))
		}
	}
	if b.rev != b.startRev {
		b.setErr(putInt(b.meta, metaRev, b.rev))
	}
	if b.err != nil {
		return nil, 0, b.err
	}
	if !b.dirty {
		return nil, 0, nil
	}
	txID := tx.ID()
	committing = true
	err = tx.Commit()
	s.commits.Add(1)
	if err != nil {
		w.commitFailed(txID, err)
		return nil, 0, fmt.Errorf("writing to %s: %w", s.opts.Path, err)
	}
	return b, deleted, nil
}

func finish(ops []*writeOp, err error) {
	for _, op := range ops {
		if err != nil {
			op.err, op.resp = err, nil
		}
		close(op.done)
	}
}

// commitFailed decides whether writes may continue after a failed commit. A full disk that
// failed before bbolt wrote its meta page left the file exactly as before, so later writes may
// succeed once space is freed. Anything else (a failed fsync above all) may have left data in
// the page cache that the disk never got, and only a restart reads the truth back.
func (w *writer) commitFailed(txID int, err error) {
	s := w.s
	var visible int
	if verr := s.db.View(func(tx *bolt.Tx) error { visible = tx.ID(); return nil }); verr != nil {
		visible = txID
	}
	if errors.Is(err, syscall.ENOSPC) && visible < txID {
		klog.ErrorS(err, "Datastore write failed: disk full; writes fail until space is freed", "path", s.opts.Path)
		return
	}
	ro := fmt.Errorf("datastore is read-only after a failed write to %s (%v): restart it once the disk is healthy", s.opts.Path, err)
	s.writeErr.Store(&ro)
	klog.ErrorS(err, "Datastore write failed; refusing further writes until restart, reads continue", "path", s.opts.Path)
}

// publish makes a committed batch visible: index, revision, leases, then events.
func (w *writer) publish(b *batch) {
	s := w.s
	s.idxMu.Lock()
	for _, p := range b.pending {
		if len(p.appended) == 0 {
			continue
		}
		ki := p.ki
		if ki == nil {
			ki = &keyIndex{key: p.key}
			s.idx.insert(ki)
		}
		ki.revs = append(ki.revs, p.appended...)
		ki.state = p.state
	}
	s.rev.Store(b.rev)
	if b.compactRev > s.compactRev.Load() {
		s.compactRev.Store(b.compactRev)
	}
	s.idxMu.Unlock()
	s.lessor.apply(b)
	if len(b.revEvents) > 0 {
		s.events.append(b.revEvents)
	}
}

func (w *writer) startCompaction(op *writeOp) {
	if w.job != nil && w.job.rev < op.rev {
		// The newer compaction covers the older one; its waiters are answered when it ends.
		op.rev = max(op.rev, w.job.rev)
		w.job.rev, w.job.cursor, w.job.indexDone = op.rev, nil, false
	} else if w.job == nil {
		w.job = &compactJob{rev: op.rev}
	}
	if op.physical {
		w.job.waiters = append(w.job.waiters, op)
	} else {
		close(op.done)
	}
}

// compactIndexStep drops compacted revisions from a bounded slice of the index.
func (w *writer) compactIndexStep(busy bool) {
	s, job := w.s, w.job
	stepKeys := compactStepKeys
	if busy {
		stepKeys = compactStepKeysWithOps
	}
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	var empty []*keyIndex
	n := 0
	reachedEnd := true
	s.idx.tree.AscendGreaterOrEqual(&keyIndex{key: job.cursor}, func(ki *keyIndex) bool {
		if n == stepKeys {
			job.cursor = ki.key
			reachedEnd = false
			return false
		}
		var gone bool
		job.dropped, gone = compactKey(ki, job.rev, job.dropped)
		if gone {
			empty = append(empty, ki)
		}
		n++
		return true
	})
	for _, ki := range empty {
		s.idx.remove(ki)
	}
	if reachedEnd {
		job.indexDone = true
		slices.SortFunc(job.dropped, func(a, b revision) int { return cmp.Or(cmp.Compare(a.main, b.main), cmp.Compare(a.sub, b.sub)) })
	}
}

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

func (b *batch) compact(rev int64) error {
	if rev <= b.compactRev {
		return ErrCompacted
	}
	if rev > b.rev {
		return ErrFutureRev
	}
	b.compactRev = rev
	b.dirty = true
	b.setErr(putInt(b.meta, metaCompactRev, rev))
	return nil
}

func (b *batch) deleteRecords(revs []revision) error {
	if len(revs) > 0 {
		b.dirty = true
	}
	for _, r := range revs {
		if err := b.revs.Delete(revKey(r)); err != nil {
			return fmt.Errorf("deleting compacted revision %d: %w", r.main, err)
		}
	}
	return nil
}
