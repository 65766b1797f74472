package mvcc

// Compaction: a compaction request is recorded in the batch that carries it; the writer then
// drops the compacted revisions from the in-memory index in bounded steps between batches, and
// deletes their records from the file a bounded run per batch.

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	"k8s.io/klog/v2"
)

const (
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

// compactJob is the compaction in progress.
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

// compact records a compaction to rev in the batch; the writer starts it once committed.
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

// startCompaction starts the compaction a committed op asked for, or folds it into the one in
// progress. A physical compaction is answered when its records are gone.
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

// resumeCompaction picks up a compaction that a restart interrupted: recorded, but its records
// not all deleted.
func (w *writer) resumeCompaction() {
	s := w.s
	s.dbMu.RLock()
	var done int64
	err := s.db.View(func(tx *bolt.Tx) error { done = getInt(tx.Bucket(bucketMeta), metaCompactDone); return nil })
	s.dbMu.RUnlock()
	if c := s.compactRev.Load(); err == nil && done < c {
		// A compaction was interrupted by a restart: finish it.
		w.job = &compactJob{rev: c}
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

// compactDeleteStep deletes, in the batch's transaction, a bounded run of the records the index
// pass dropped, once that pass is done, and records the compaction as done with the last run.
// busy says the batch carries requests. It returns how many records it deleted.
func (w *writer) compactDeleteStep(b *batch, busy bool) (deleted int, err error) {
	if w.job == nil || !w.job.indexDone {
		return 0, nil
	}
	deleted = min(len(w.job.dropped), compactDeletesWhenIdle)
	if busy {
		deleted = min(deleted, compactDeletesWithOps)
	}
	if err := b.deleteRecords(w.job.dropped[:deleted]); err != nil {
		return 0, err
	}
	if deleted == len(w.job.dropped) {
		b.dirty = true
		b.setErr(putInt(b.meta, metaCompactDone, w.job.rev))
	}
	return deleted, nil
}

// deleteRecords deletes compacted records from the file in the batch's transaction.
func (b *batch) deleteRecords(revs []revision) error {
	if len(revs) > 0 {
		b.dirty = true
	}
	for _, r := range revs {
		if err := b.revs.Delete(revKey(r)); err != nil {
			return fmt.Errorf("deleting compacted revision %d: %w", r.main, err)
		}
		b.recordDelta--
	}
	return nil
}

// compactDeleted takes the records a committed batch deleted off the job, and ends the job,
// answering its waiters, once the index pass is done and no record is left.
func (w *writer) compactDeleted(deleted int) {
	if w.job != nil {
		w.job.dropped = w.job.dropped[deleted:]
		if w.job.indexDone && len(w.job.dropped) == 0 {
			klog.V(2).InfoS("Compaction finished", "revision", w.job.rev)
			finish(w.job.waiters, nil)
			w.job = nil
		}
	}
}

// capHistory asks for a compaction with the next batch once the history exceeds the configured
// cap by a tenth, down to the cap.
func (w *writer) capHistory() {
	if h := w.s.opts.HistoryRevisions; h > 0 && w.job == nil {
		rev, compacted := w.s.Revs()
		if rev-compacted > h+h/10 {
			w.autoCompact = rev - h
		}
	}
}
