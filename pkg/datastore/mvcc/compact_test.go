package mvcc

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// countRecords counts the records left in the file's revision log.
func countRecords(t *testing.T, s *Store) int {
	t.Helper()
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	n := 0
	s.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucketRevs).Stats().KeyN; return nil })
	return n
}

func compact(t *testing.T, s *Store, rev int64) {
	t.Helper()
	if _, err := s.Compact(bg, &pb.CompactionRequest{Revision: rev, Physical: true}); err != nil {
		t.Fatalf("Compact(%d): %v", rev, err)
	}
}

func TestCompaction(t *testing.T) {
	s := openTest(t, Options{})
	put(t, s, "a", "1") // 2
	put(t, s, "a", "2") // 3
	put(t, s, "b", "1") // 4
	del(t, s, "b")      // 5
	put(t, s, "c", "1") // 6
	put(t, s, "a", "3") // 7
	del(t, s, "c")      // 8

	compact(t, s, 6)
	if _, err := s.Range(bg, &pb.RangeRequest{Key: []byte("a"), Revision: 5}); !errors.Is(err, ErrCompacted) {
		t.Fatalf("read below the compaction: %v", err)
	}
	if _, err := s.Compact(bg, &pb.CompactionRequest{Revision: 6}); !errors.Is(err, ErrCompacted) {
		t.Fatalf("compacting the same revision again: %v", err)
	}
	if _, err := s.Compact(bg, &pb.CompactionRequest{Revision: 100}); !errors.Is(err, ErrFutureRev) {
		t.Fatalf("compacting the future: %v", err)
	}
	// Reads at and above the compaction see exactly what they saw before.
	wantKV(t, get(t, s, "a", 6), "a", "2", 2, 3, 2)
	wantKV(t, get(t, s, "c", 6), "c", "1", 6, 6, 1)
	if kv := get(t, s, "b", 6); kv != nil {
		t.Fatalf("b was deleted at 5, read at 6 returned %v", kv)
	}
	wantKV(t, get(t, s, "a", 0), "a", "3", 2, 7, 3)
	// Left: a@3 (visible at 6), a@7, c@6, tombstone c@8; gone: a@2, b@4, tombstone b@5.
	if n := countRecords(t, s); n != 4 {
		t.Fatalf("%d records after compaction, want 4", n)
	}

	// The compacted revision survives a restart.
	s = reopen(t, s)
	if _, err := s.Range(bg, &pb.RangeRequest{Key: []byte("a"), Revision: 5}); !errors.Is(err, ErrCompacted) {
		t.Fatalf("read below the compaction after restart: %v", err)
	}
	compact(t, s, s.Rev())
	// Left: the live a@7, and the tombstone c@8 because it is exactly at the compacted revision,
	// where a watch may still start.
	if n := countRecords(t, s); n != 2 {
		t.Fatalf("%d records after compacting everything, want 2", n)
	}
	put(t, s, "d", "1")
	compact(t, s, s.Rev())
	if n := countRecords(t, s); n != 2 {
		t.Fatalf("%d records after the next compaction, want a@7 and d@9", n)
	}
	// Opening checks the records left against the count the commits kept.
	s = reopen(t, s)
	if n := countRecords(t, s); n != 2 {
		t.Fatalf("%d records after a restart, want 2", n)
	}
}

// TestCompactionResumesAfterRestart: a compaction whose record deletion was interrupted is
// finished by the next start.
func TestCompactionResumesAfterRestart(t *testing.T) {
	s := openTest(t, Options{})
	for i := 0; i < 100; i++ {
		put(t, s, "k", fmt.Sprint(i))
	}
	// Record a compaction the way the writer does first, and stop before deleting anything.
	s.dbMu.RLock()
	err := s.db.Update(func(tx *bolt.Tx) error { return putInt(tx.Bucket(bucketMeta), metaCompactRev, 90) })
	s.dbMu.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	eventually(t, 5e9, "compaction to finish", func() bool { return countRecords(t, s) == 12 })
	if _, err := s.Range(bg, &pb.RangeRequest{Key: []byte("k"), Revision: 89}); !errors.Is(err, ErrCompacted) {
		t.Fatalf("read below the resumed compaction: %v", err)
	}
	wantKV(t, get(t, s, "k", 90), "k", "88", 2, 90, 89)
}

// TestHistoryCap: with nobody compacting, history is capped at the configured size.
func TestHistoryCap(t *testing.T) {
	s := openTest(t, Options{HistoryRevisions: 50})
	for i := 0; i < 200; i++ {
		put(t, s, "k", fmt.Sprint(i))
	}
	eventually(t, 5e9, "automatic compaction", func() bool {
		rev, compacted := s.Revs()
		return compacted > 0 && rev-compacted <= 55+1
	})
	rev, compacted := s.Revs()
	if compacted < rev-60 {
		t.Fatalf("history not capped: revision %d, compacted %d", rev, compacted)
	}
	eventually(t, 5e9, "records deleted", func() bool { return countRecords(t, s) <= 60 })
	reopen(t, s) // the record count kept through the deletions agrees with the file
}

// TestCompactionFreesPages: the file's free pages are reused, so churn plus compaction does
// not grow the file without bound.
func TestCompactionFreesPages(t *testing.T) {
	s := openTest(t, Options{})
	value := make([]byte, 1024)
	churn := func() {
		var wg sync.WaitGroup
		for w := 0; w < 20; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 100; i++ {
					if _, err := s.Put(bg, &pb.PutRequest{Key: []byte(fmt.Sprint("k", w*5+i%5)), Value: value}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		compact(t, s, s.Rev())
	}
	churn()
	size1, _ := s.DBSize()
	for i := 0; i < 3; i++ {
		churn()
	}
	size2, inUse := s.DBSize()
	if size2 > size1*3/2 {
		t.Fatalf("file grew from %d to %d bytes over equal rounds of churn: free pages not reused", size1, size2)
	}
	if inUse > size2 {
		t.Fatalf("in use %d > size %d", inUse, size2)
	}
	if err := s.Defragment(); err != nil {
		t.Fatal(err)
	}
	size3, _ := s.DBSize()
	if size3 >= size2 {
		t.Fatalf("defragment did not shrink the file: %d -> %d", size2, size3)
	}
	if kv := get(t, s, "k5", 0); kv == nil || kv.Version != 80 || string(kv.Value) != string(value) {
		t.Fatalf("k5 after churn and defragment: %v", kv)
	}
	t.Logf("size after churn %d, after more churn %d (in use %d), after defragment %d", size1, size2, inUse, size3)
}
