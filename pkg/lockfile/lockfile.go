// Package lockfile holds the flock(2) locks ketch takes on files: one per data dir and one per
// run dir, so that a second ketch cannot use the same state, and the host lock that tests and
// benchmarks which run nodes on this machine share. A lock belongs to the open file, so it goes
// with the process however that ends; the file keeps the holder's pid for error messages.
package lockfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// HeldError is a lock another process holds.
type HeldError struct {
	Path string
	// PID is what the holder wrote into the file: its pid, or empty if it wrote nothing yet.
	PID string
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s is locked by another process (pid %s)", e.Path, e.PID)
}

// Lock is a held lock.
type Lock struct{ f *os.File }

// TryAcquire takes path's lock without waiting, creating the file and its directory (0700) if
// needed, and writes this process's pid into it. A lock another process holds is a *HeldError,
// and the file is left as it is.
func TryAcquire(path string) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			b, _ := os.ReadFile(path)
			return nil, &HeldError{Path: path, PID: strings.TrimSpace(string(b))}
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Acquire waits for path's lock until ctx ends. waiting, if not nil, is called once when the
// lock is found held, so that the caller can say what it waits for.
func Acquire(ctx context.Context, path string, waiting func(*HeldError)) (*Lock, error) {
	told := false
	for {
		l, err := TryAcquire(path)
		var held *HeldError
		if !errors.As(err, &held) {
			return l, err
		}
		if !told && waiting != nil {
			waiting(held)
			told = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Release gives the lock up.
func (l *Lock) Release() { l.f.Close() }
