package testutil

import (
	"context"
	"testing"

	"github.com/ketch-k8s/ketch/internal/harness"
)

// LockHost waits for harness.HostLock, which every test or benchmark that runs a node on this
// machine holds, and holds it until the test ends.
func LockHost(t testing.TB) {
	t.Helper()
	SkipIfShort(t, "runs a node on this machine")
	lock, err := harness.LockHost(context.Background(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lock.Release)
}
