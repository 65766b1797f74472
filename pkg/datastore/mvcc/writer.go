package mvcc

// The writer goroutine: it takes every write request that is waiting (group commit), applies
// them as one batch in one bbolt transaction (batch.go), commits it, and only then publishes the
// result and answers the requests. Compaction runs in steps between and inside its batches
// (compact.go).

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"k8s.io/klog/v2"
)

// maxBatchOps bounds one group commit, so one batch's latency stays bounded under load.
const maxBatchOps = 512

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

func (s *Store) runWriter() {
	w := &writer{s: s}
	w.resumeCompaction()
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
	w.compactDeleted(deleted)
	for _, op := range ops {
		if op.kind == opCompact && op.err == nil {
			w.startCompaction(op)
			continue
		}
		close(op.done)
	}
	w.capHistory()
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
	if deleted, err = w.compactDeleteStep(b, len(ops) > 0); err != nil {
		return nil, 0, err
	}
	if b.rev != b.startRev {
		b.setErr(putInt(b.meta, metaRev, b.rev))
	}
	if b.recordDelta != 0 || (b.dirty && b.meta.Get(metaRecords) == nil) {
		b.setErr(putInt(b.meta, metaRecords, s.records.Load()+b.recordDelta))
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
	s.records.Add(b.recordDelta)
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
