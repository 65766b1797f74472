package mvcc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// TestSnapshotWhileWriting: a snapshot streamed while writers keep going is one consistent
// state: opened as a store, it equals the live store read at the snapshot's revision.
func TestSnapshotWhileWriting(t *testing.T) {
	s := openTest(t, Options{})
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				key := []byte(fmt.Sprintf("k%d-%d", w, i%50))
				if i%7 == 0 {
					s.DeleteRange(ctx, &pb.DeleteRangeRequest{Key: key})
					continue
				}
				s.Put(ctx, &pb.PutRequest{Key: key, Value: bytes.Repeat([]byte{byte(i)}, 300)})
			}
		}()
	}
	eventually(t, 10e9, "some history", func() bool { return s.Rev() > 500 })
	var snap bytes.Buffer
	var size int64
	if err := s.Snapshot(&snap, func(n int64) { size = n }); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10e9, "writes after the snapshot", func() bool { return s.Rev() > 1500 })
	stop()
	wg.Wait()
	if int64(snap.Len()) != size {
		t.Fatalf("snapshot is %d bytes, announced %d", snap.Len(), size)
	}
	path := filepath.Join(t.TempDir(), "snap.db")
	if err := os.WriteFile(path, snap.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	restored := openTest(t, Options{Path: path})
	rev := restored.Rev()
	if rev < 500 || rev >= s.Rev() {
		t.Fatalf("snapshot at revision %d, live store at %d", rev, s.Rev())
	}
	all := &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}
	got, err := restored.Range(bg, all)
	if err != nil {
		t.Fatal(err)
	}
	all.Revision = rev
	want, err := s.Range(bg, all)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Kvs) != len(want.Kvs) || got.Count != want.Count {
		t.Fatalf("snapshot holds %d keys, live store at its revision %d", len(got.Kvs), len(want.Kvs))
	}
	for i := range got.Kvs {
		if got.Kvs[i].String() != want.Kvs[i].String() {
			t.Fatalf("key %d differs: snapshot %v, live %v", i, got.Kvs[i], want.Kvs[i])
		}
	}
}
