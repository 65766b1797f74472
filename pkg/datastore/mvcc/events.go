package mvcc

import (
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// revEvents is every change made at one revision.
type revEvents struct {
	rev    int64
	events []*mvccpb.Event
	// prevKnown says PrevKv was filled in (for every event that has a previous value); when no
	// watcher wanted prev_kv the writer skipped reading it, and watchers read it from the log.
	prevKnown bool
	// omitted says the revision's events were too large to keep in memory.
	omitted bool
}

// eventLog is an in-memory copy of the most recent revisions' events, bounded in size, so that
// watchers that keep up never read the file. It always holds a contiguous run of revisions
// ending at the store's current revision (or nothing).
type eventLog struct {
	mu       sync.RWMutex
	revs     []revEvents
	size     int
	maxBytes int
	// changed is closed and replaced whenever revisions are appended.
	changed chan struct{}
}

func newEventLog(maxBytes int) *eventLog {
	return &eventLog{maxBytes: maxBytes, changed: make(chan struct{})}
}

func eventSize(ev *mvccpb.Event) int {
	n := 64 + len(ev.Kv.Key) + len(ev.Kv.Value)
	if ev.PrevKv != nil {
		n += len(ev.PrevKv.Key) + len(ev.PrevKv.Value)
	}
	return n
}

func (l *eventLog) append(revs []revEvents) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.revs); n > 0 && l.revs[n-1].rev+1 != revs[0].rev {
		// A gap would make readers skip revisions; start over from here instead.
		l.revs, l.size = nil, 0
	}
	for i := len(revs) - 1; i >= 0; i-- {
		if revs[i].omitted {
			// The log holds only whole runs of revisions: start after the last one left out;
			// readers of it go to the file.
			l.revs, l.size = nil, 0
			revs = revs[i+1:]
			break
		}
	}
	for _, re := range revs {
		for _, ev := range re.events {
			l.size += eventSize(ev)
		}
	}
	l.revs = append(l.revs, revs...)
	for l.size > l.maxBytes && len(l.revs) > 1 {
		for _, ev := range l.revs[0].events {
			l.size -= eventSize(ev)
		}
		// Clear the slot so its events can be freed; the slice's spare room at the front is
		// dropped when append next reallocates.
		l.revs[0] = revEvents{}
		l.revs = l.revs[1:]
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// reset forgets everything, for when the store's state is reloaded.
func (l *eventLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.revs, l.size = nil, 0
	close(l.changed)
	l.changed = make(chan struct{})
}

// wait returns a channel that is closed at the next append.
func (l *eventLog) wait() <-chan struct{} {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.changed
}

// read returns the revisions from..to that the log holds, oldest first. ok is false if from is
// older than the log, in which case the caller reads the file.
func (l *eventLog) read(from, to int64) (revs []revEvents, ok bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.revs) == 0 || from < l.revs[0].rev {
		return nil, false
	}
	first := l.revs[0].rev
	last := l.revs[len(l.revs)-1].rev
	if from > last {
		return nil, true
	}
	to = min(to, last)
	return l.revs[from-first : to-first+1], true
}

// first returns the oldest revision the log holds, or 0.
func (l *eventLog) first() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.revs) == 0 {
		return 0
	}
	return l.revs[0].rev
}
