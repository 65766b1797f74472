package testutil

import (
	"os"
	"syscall"
	"testing"
)

// HostLock is held by every test or benchmark that runs a node on this machine: a node owns
// fixed ports, and ketch-killall.sh removes every pod network namespace and KUBE-/CNI- chain,
// so two of them must never overlap (go test runs packages in parallel).
const HostLock = "/tmp/ketch-host.lock"

// LockHost waits for HostLock and holds it until the test ends.
func LockHost(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(HostLock, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("locking %s: %v", HostLock, err)
	}
	t.Cleanup(func() { f.Close() })
}
