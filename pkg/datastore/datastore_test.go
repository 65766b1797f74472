package datastore

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/ketch-k8s/ketch/pkg/datastore/mvcc"
)

// startTest starts a datastore on two unix sockets in a fresh data dir.
func startTest(t *testing.T) (d *Datastore, cfg Config) {
	t.Helper()
	dir := t.TempDir()
	cfg = Config{
		DataDir:          filepath.Join(dir, "data"),
		ListenClientURLs: []string{"unix://" + filepath.Join(dir, "a.sock"), "unix://" + filepath.Join(dir, "b.sock")},
	}
	d, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { d.Stop() })
	return d, cfg
}

// runAsync calls Run in a goroutine and returns where its result arrives.
func runAsync(ctx context.Context, d *Datastore) <-chan error {
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	return done
}

func waitRun(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

// reopen opens the datastore's file again, which works only once Run has closed it (bbolt's
// lock), and returns the value of key.
func reopen(t *testing.T, cfg Config, key string) string {
	t.Helper()
	s, err := mvcc.Open(mvcc.Options{Path: filepath.Join(cfg.DataDir, DBFileName), LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("reopening the file after Run returned: %v", err)
	}
	defer s.Close()
	resp, err := s.Range(context.Background(), &pb.RangeRequest{Key: []byte(key)})
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("key %q: got %d key-values after reopening, want 1", key, len(resp.Kvs))
	}
	return string(resp.Kvs[0].Value)
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	d, cfg := startTest(t)
	if _, err := d.store.Put(context.Background(), &pb.PutRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(ctx, d)
	cancel()
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run after cancel: %v, want nil", err)
	}
	if got := reopen(t, cfg, "k"); got != "v" {
		t.Fatalf("k = %q after reopening, want v", got)
	}
}

func TestRunFailsWhenAListenerDies(t *testing.T) {
	d, cfg := startTest(t)
	if _, err := d.store.Put(context.Background(), &pb.PutRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	done := runAsync(context.Background(), d)
	// The second listener dies on its own, as if its socket failed.
	d.listeners[1].Close()
	err := waitRun(t, done)
	if err == nil {
		t.Fatal("Run returned nil after a listener died")
	}
	if !strings.Contains(err.Error(), cfg.ListenClientURLs[1]) {
		t.Fatalf("Run's error %q does not name the listener's URL %s", err, cfg.ListenClientURLs[1])
	}
	if strings.Contains(err.Error(), cfg.ListenClientURLs[0]) {
		t.Fatalf("Run's error %q names the listener that did not fail, %s", err, cfg.ListenClientURLs[0])
	}
	// Everything is stopped: the file is closed and can be opened again.
	if got := reopen(t, cfg, "k"); got != "v" {
		t.Fatalf("k = %q after reopening, want v", got)
	}
}

func TestRunReturnsWhenStopped(t *testing.T) {
	d, _ := startTest(t)
	done := runAsync(context.Background(), d)
	if err := d.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run after Stop: %v, want nil", err)
	}
}
