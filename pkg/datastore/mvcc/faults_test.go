package mvcc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// storeFile makes a store with some history and returns its path, closed.
func storeFile(t *testing.T) string {
	t.Helper()
	s := openTest(t, Options{})
	for i := 0; i < 200; i++ {
		put(t, s, fmt.Sprint("key", i%20), strings.Repeat("v", 500))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return s.opts.Path
}

func TestRefusesCorruptFiles(t *testing.T) {
	path := storeFile(t)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pageSize := os.Getpagesize()
	// bbolt preallocates the file; only cutting into the pages in use is damage.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var inUse int
	db.View(func(tx *bolt.Tx) error { inUse = int(tx.Size()); return nil })
	db.Close()
	cases := map[string]func([]byte) []byte{
		"empty":     func(b []byte) []byte { return nil },
		"truncated": func(b []byte) []byte { return b[:inUse/2/pageSize*pageSize] },
		"one page":  func(b []byte) []byte { return b[:pageSize] },
		"garbage":   func(b []byte) []byte { return []byte(strings.Repeat("not a database ", 1000)) },
		"both meta pages": func(b []byte) []byte {
			c := clone(b)
			scribble(c[16:pageSize])
			scribble(c[pageSize+16 : 2*pageSize])
			return c
		},
		// bbolt pages have no checksum: one branch entry fewer drops a whole run of records
		// while every page still in the tree is well formed. Only the record count sees it.
		"a lost branch entry": func(b []byte) []byte {
			c := clone(b)
			const branchPage, countAt = 0x01, 10 // page header: id u64, flags u16, count u16
			dropped := 0
			for off := 2 * pageSize; off+pageSize <= inUse; off += pageSize {
				if binary.LittleEndian.Uint16(c[off+8:]) == branchPage {
					if n := binary.LittleEndian.Uint16(c[off+countAt:]); n >= 2 {
						binary.LittleEndian.PutUint16(c[off+countAt:], n-1)
						dropped++
					}
				}
			}
			if dropped == 0 {
				t.Fatal("the file has no branch page to damage")
			}
			return c
		},
		"data pages": func(b []byte) []byte {
			c := clone(b)
			for off := 2 * pageSize; off+pageSize <= len(c); off += pageSize {
				scribble(c[off : off+64])
			}
			return c
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "damaged.db")
			bad := damage(good)
			if err := os.WriteFile(p, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(Options{Path: p})
			if err == nil {
				s.Close()
				t.Fatal("opened a damaged file")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error does not say the file is corrupt and name it: %v", err)
			}
			after, _ := os.ReadFile(p)
			if string(after) != string(bad) {
				t.Fatal("opening the damaged file changed it")
			}
			t.Logf("%s: %v", name, err)
		})
	}
	// A valid bbolt file that is not ours is refused too.
	other := filepath.Join(t.TempDir(), "other.db")
	db, err = bolt.Open(other, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("mine")); return err })
	db.Close()
	if _, err := Open(Options{Path: other}); err == nil || !strings.Contains(err.Error(), "not a ketch datastore") {
		t.Fatalf("foreign bbolt file: %v", err)
	}
}

// TestFileWithoutRecordCount: a file from a ketch that kept no record count opens as before,
// and its next commit starts the count.
func TestFileWithoutRecordCount(t *testing.T) {
	path := storeFile(t)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(metaRecords) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := openTest(t, Options{Path: path})
	put(t, s, "one-more", "v")
	s = reopen(t, s)
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	s.db.View(func(tx *bolt.Tx) error {
		if n := getInt(tx.Bucket(bucketMeta), metaRecords); n != 201 {
			t.Errorf("record count after the first commit: %d, want 201", n)
		}
		return nil
	})
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func scribble(b []byte) {
	for i := range b {
		b[i] = byte(i*7 + 13)
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	s := openTest(t, Options{})
	start := time.Now()
	_, err := Open(Options{Path: s.opts.Path, LockTimeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("second open took %v", d)
	}
	put(t, s, "still", "works")
}

func needRoot(t *testing.T) {
	t.Helper()
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("needs root to mount a file system (CI runs as root); not with -short")
	}
}

// TestDiskFull fills a real (tmpfs) file system: writes fail with an error, reads go on,
// nothing acknowledged is lost, and writes work again once there is space.
func TestDiskFull(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "ketch-test", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	s, err := Open(Options{Path: filepath.Join(dir, "test.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	value := []byte(strings.Repeat("x", 16<<10))
	acked := map[string]bool{}
	var writeErr error
	for i := 0; i < 1000 && writeErr == nil; i++ {
		key := fmt.Sprint("k", i)
		if _, writeErr = s.Put(bg, &pb.PutRequest{Key: []byte(key), Value: value}); writeErr == nil {
			acked[key] = true
		}
	}
	if writeErr == nil {
		t.Fatal("16 MiB of writes fit in a 4 MiB file system")
	}
	if !errors.Is(writeErr, syscall.ENOSPC) {
		t.Fatalf("write on a full disk: %v", writeErr)
	}
	t.Logf("%d writes acknowledged, then: %v", len(acked), writeErr)
	for key := range acked {
		if kv := get(t, s, key, 0); kv == nil || len(kv.Value) != len(value) {
			t.Fatalf("acknowledged %s unreadable on a full disk", key)
		}
	}
	// Free space by deleting keys? That needs a write too; grow the file system instead.
	if out, err := exec.Command("mount", "-o", "remount,size=64m", dir).CombinedOutput(); err != nil {
		t.Fatalf("growing tmpfs: %v %s", err, out)
	}
	put(t, s, "after", "space")
	s = reopen(t, s)
	for key := range acked {
		if get(t, s, key, 0) == nil {
			t.Fatalf("acknowledged %s lost", key)
		}
	}
	if get(t, s, "after", 0) == nil {
		t.Fatal("write after freeing space lost")
	}
}

// failingSyncNode is a loopback FUSE node whose fsync fails while fail is set: a real failed
// fsync, as a dying disk gives it.
type failingSyncNode struct {
	*fs.LoopbackNode
	fail *atomic.Bool
}

// WrapChild makes every node of the file system a failingSyncNode.
func (n *failingSyncNode) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &failingSyncNode{LoopbackNode: ops.(*fs.LoopbackNode), fail: n.fail}
}

func (n *failingSyncNode) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	if n.fail.Load() {
		return syscall.EIO
	}
	if fsyncer, ok := f.(fs.FileFsyncer); ok {
		return fsyncer.Fsync(ctx, flags)
	}
	return 0
}

func mountFailingSync(t *testing.T) (dir string, fail *atomic.Bool) {
	t.Helper()
	needRoot(t)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no FUSE on this machine: %v", err)
	}
	backing, dir := t.TempDir(), t.TempDir()
	loopback, err := fs.NewLoopbackRoot(backing)
	if err != nil {
		t.Fatal(err)
	}
	fail = &atomic.Bool{}
	srv, err := fs.Mount(dir, &failingSyncNode{LoopbackNode: loopback.(*fs.LoopbackNode), fail: fail}, &fs.Options{MountOptions: fuse.MountOptions{DirectMount: true, FsName: "ketch-test"}})
	if err != nil {
		t.Fatalf("mounting FUSE: %v", err)
	}
	t.Cleanup(func() { srv.Unmount() })
	return dir, fail
}

// TestFailedFsync: once an fsync fails, that write fails, the store refuses further writes
// (the disk may have dropped data it accepted) but serves reads, and a restart finds every
// acknowledged write.
func TestFailedFsync(t *testing.T) {
	dir, fail := mountFailingSync(t)
	path := filepath.Join(dir, "test.db")
	s, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		put(t, s, fmt.Sprint("k", i), "v")
	}
	fail.Store(true)
	if _, err := s.Put(bg, &pb.PutRequest{Key: []byte("doomed"), Value: []byte("v")}); err == nil {
		t.Fatal("a write whose fsync failed was acknowledged")
	} else {
		t.Logf("write with a failed fsync: %v", err)
	}
	fail.Store(false)
	_, err = s.Put(bg, &pb.PutRequest{Key: []byte("later"), Value: []byte("v")})
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("write after a failed fsync: %v", err)
	}
	for i := 0; i < 20; i++ {
		if get(t, s, fmt.Sprint("k", i), 0) == nil {
			t.Fatalf("k%d unreadable after the failed fsync", i)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 20; i++ {
		if get(t, s, fmt.Sprint("k", i), 0) == nil {
			t.Fatalf("acknowledged k%d lost", i)
		}
	}
	put(t, s, "after-restart", "v")
}

// TestRandomDamageNeverCrashes flips random bytes in real files, many times over, both after a
// clean close (bbolt's freelist is stored) and after a crash (the open rebuilds it by walking
// every page). Opening must either refuse with ErrCorrupt or succeed, serve every record and
// close again: a crash here would kill the test.
func TestRandomDamageNeverCrashes(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("KETCH_DAMAGE_SEED"); v != "" {
		fmt.Sscan(v, &seed)
	}
	t.Logf("seed %d (KETCH_DAMAGE_SEED reproduces it)", seed)
	rnd := rand.New(rand.NewPCG(seed, 1))

	s := openTest(t, Options{})
	for i := 0; i < 300; i++ {
		put(t, s, fmt.Sprint("key", i%40), strings.Repeat("v", 300))
	}
	crashed, err := os.ReadFile(s.opts.Path) // as a SIGKILL would leave it
	if err != nil {
		t.Fatal(err)
	}
	inUse, _ := s.DBSize() // damage the pages in use; the rest of the file is preallocated
	s.Close()
	clean, err := os.ReadFile(s.opts.Path)
	if err != nil {
		t.Fatal(err)
	}
	for name, good := range map[string][]byte{"clean close": clean, "crash": crashed} {
		refused, opened := 0, 0
		for i := 0; i < 100; i++ {
			bad := clone(good)
			for n := 1 + rnd.IntN(16); n > 0; n-- {
				bad[2*os.Getpagesize()+rnd.IntN(int(inUse)-2*os.Getpagesize())] ^= byte(1 + rnd.IntN(255))
			}
			p := filepath.Join(t.TempDir(), "damaged.db")
			if err := os.WriteFile(p, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			ds, err := Open(Options{Path: p, CheckFile: checkInChild})
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: damaged file: error is not ErrCorrupt: %v", name, err)
				}
				refused++
				continue
			}
			opened++
			// Damage in free pages leaves a usable store with all its data.
			resp, err := ds.Range(bg, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
			if err != nil || resp.Count != 40 {
				t.Fatalf("%s: opened a damaged file that then reads %v (%v)", name, resp, err)
			}
			ds.Close()
		}
		t.Logf("%s: %d damaged files refused, %d opened (all their damage in free pages)", name, refused, opened)
	}
}
