package mvcc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// checkEnv makes the test binary run CheckFile on a path and exit: the stand-in for
// `ketch datastore check` in these tests.
const checkEnv = "KETCH_MVCC_TEST_CHECK"

func TestMain(m *testing.M) {
	if path := os.Getenv(checkEnv); path != "" {
		if err := CheckFile(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// checkInChild runs CheckFile in a child process, as the datastore package does.
func checkInChild(path string) error {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), checkEnv+"="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Path == "" {
		opts.Path = filepath.Join(t.TempDir(), "test.db")
	}
	if opts.CheckFile == nil {
		opts.CheckFile = checkInChild
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// reopen closes s and opens its file again.
func reopen(t testing.TB, s *Store) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openTest(t, s.opts)
}

var bg = context.Background()

func put(t testing.TB, s *Store, key, value string) *pb.PutResponse {
	t.Helper()
	resp, err := s.Put(bg, &pb.PutRequest{Key: []byte(key), Value: []byte(value)})
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return resp
}

func del(t testing.TB, s *Store, key string) *pb.DeleteRangeResponse {
	t.Helper()
	resp, err := s.DeleteRange(bg, &pb.DeleteRangeRequest{Key: []byte(key)})
	if err != nil {
		t.Fatalf("DeleteRange(%q): %v", key, err)
	}
	return resp
}

func get(t testing.TB, s *Store, key string, rev int64) *mvccpb.KeyValue {
	t.Helper()
	resp, err := s.Range(bg, &pb.RangeRequest{Key: []byte(key), Revision: rev})
	if err != nil {
		t.Fatalf("Range(%q@%d): %v", key, rev, err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	return resp.Kvs[0]
}

func wantKV(t testing.TB, kv *mvccpb.KeyValue, key, value string, create, mod, version int64) {
	t.Helper()
	if kv == nil {
		t.Fatalf("key %q missing, want value %q", key, value)
	}
	if string(kv.Key) != key || string(kv.Value) != value || kv.CreateRevision != create || kv.ModRevision != mod || kv.Version != version {
		t.Fatalf("got %q=%q create=%d mod=%d version=%d, want %q=%q create=%d mod=%d version=%d",
			kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, key, value, create, mod, version)
	}
}

func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
