package lockfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestTryAcquire(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "ketch.pid")
	l, err := TryAcquire(path)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("the lock file holds %q, want this process' pid %d", b, os.Getpid())
	}
	// flock locks belong to the open file, so a second open in this process contends like
	// another process would.
	_, err = TryAcquire(path)
	var held *HeldError
	if !errors.As(err, &held) || held.PID != strconv.Itoa(os.Getpid()) || held.Path != path {
		t.Fatalf("second lock: %v, want a HeldError naming pid %d", err, os.Getpid())
	}
	l.Release()
	l, err = TryAcquire(path)
	if err != nil {
		t.Fatalf("locking again after release: %v", err)
	}
	l.Release()
}

// TestHeldElsewhere takes the lock as another process would, with a pid of its own in the file:
// the error names that pid and the file is left alone.
func TestHeldElsewhere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ketch.pid")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("4242\n"); err != nil {
		t.Fatal(err)
	}
	_, err = TryAcquire(path)
	var held *HeldError
	if !errors.As(err, &held) || held.PID != "4242" {
		t.Fatalf("got %v, want a HeldError naming pid 4242", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "4242\n" {
		t.Errorf("the holder's file was changed to %q", b)
	}

	// Acquire waits, says so once, and gives up when its context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	calls := 0
	_, err = Acquire(ctx, path, func(h *HeldError) { calls++ })
	if !errors.Is(err, context.DeadlineExceeded) || calls != 1 {
		t.Fatalf("Acquire on a held lock: %v after %d waiting calls, want a deadline error after 1", err, calls)
	}
	// ... and takes the lock once it is free.
	go func() { time.Sleep(300 * time.Millisecond); f.Close() }()
	l, err := Acquire(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
}

func TestNotCreatable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := TryAcquire(filepath.Join(file, "dir", "ketch.pid"))
	if err == nil || !strings.Contains(err.Error(), "creating "+filepath.Join(file, "dir")) {
		t.Fatalf("got %v", err)
	}
}
