package mvcc

import (
	"bytes"
	"sort"

	"github.com/google/btree"
)

// indexRev is one revision of a key as the index keeps it.
type indexRev struct {
	revision
	tombstone bool
}

// keyState is a key's latest state, kept in memory so that compares and puts need no disk read.
// A version of 0 means the key does not exist (never written, or deleted).
type keyState struct {
	modRev    int64
	createRev int64
	version   int64
	lease     int64
}

func (s keyState) exists() bool { return s.version > 0 }

// keyIndex is every retained revision of one key, oldest first, and its latest state.
type keyIndex struct {
	key   []byte
	revs  []indexRev
	state keyState
}

// at returns the key's revision visible at rev: the newest one at or below rev. ok is false if
// the key did not exist at rev.
func revAt(revs []indexRev, rev int64) (r indexRev, ok bool) {
	i := sort.Search(len(revs), func(i int) bool { return revs[i].main > rev })
	if i == 0 {
		return indexRev{}, false
	}
	r = revs[i-1]
	return r, !r.tombstone
}

// index maps keys to their revisions. The store's writer goroutine is its only mutator; readers
// and the writer's mutations are separated by the store's index lock.
type index struct {
	tree *btree.BTreeG[*keyIndex]
}

func newIndex() *index {
	return &index{tree: btree.NewG(32, func(a, b *keyIndex) bool { return bytes.Compare(a.key, b.key) < 0 })}
}

func (x *index) get(key []byte) *keyIndex {
	ki, _ := x.tree.Get(&keyIndex{key: key})
	return ki
}

func (x *index) insert(ki *keyIndex) { x.tree.ReplaceOrInsert(ki) }

func (x *index) remove(ki *keyIndex) { x.tree.Delete(ki) }

func (x *index) len() int { return x.tree.Len() }

// ascend calls fn for every key in [key, end) in order until fn returns false. end == nil means
// the single key; an empty, non-nil end means no upper bound.
func (x *index) ascend(key, end []byte, fn func(*keyIndex) bool) {
	if end == nil {
		if ki := x.get(key); ki != nil {
			fn(ki)
		}
		return
	}
	if len(end) == 0 {
		x.tree.AscendGreaterOrEqual(&keyIndex{key: key}, fn)
		return
	}
	if bytes.Compare(key, end) >= 0 {
		return
	}
	x.tree.AscendRange(&keyIndex{key: key}, &keyIndex{key: end}, fn)
}

// inRange reports whether k is in [key, end) with the same conventions as ascend.
func inRange(k, key, end []byte) bool {
	if end == nil {
		return bytes.Equal(k, key)
	}
	if bytes.Compare(k, key) < 0 {
		return false
	}
	return len(end) == 0 || bytes.Compare(k, end) < 0
}

// compactKey drops the revisions of ki that no read at or above atRev can see: all but the
// newest one at or below atRev, and that one too if it is a tombstone older than atRev (a
// tombstone exactly at atRev stays so that a watch from atRev still sees the delete). It
// appends the dropped revisions to dropped and reports whether ki has no revisions left.
func compactKey(ki *keyIndex, atRev int64, dropped []revision) ([]revision, bool) {
	i := sort.Search(len(ki.revs), func(i int) bool { return ki.revs[i].main > atRev })
	if i == 0 {
		return dropped, false
	}
	keep := i - 1
	if r := ki.revs[keep]; r.tombstone && r.main < atRev {
		keep = i
	}
	for _, r := range ki.revs[:keep] {
		dropped = append(dropped, r.revision)
	}
	if keep > 0 {
		ki.revs = append(ki.revs[:0:0], ki.revs[keep:]...)
	}
	return dropped, len(ki.revs) == 0
}
