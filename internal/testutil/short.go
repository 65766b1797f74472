package testutil

import (
	"os"
	"testing"
)

// SkipIfShort skips t with -short: `go test -short ./...` runs the unit tests only, with no root,
// no ketch binary to build and no node on the machine. why says what t needs instead.
func SkipIfShort(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s: not a unit test (-short)", why)
	}
}

// NeedsRoot skips t unless it runs as root, and with -short.
func NeedsRoot(t testing.TB, why string) {
	t.Helper()
	SkipIfShort(t, why)
	if os.Geteuid() != 0 {
		t.Skipf("needs root: %s", why)
	}
}
