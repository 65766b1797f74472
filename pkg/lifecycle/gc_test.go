package lifecycle

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestTuneGC: nodes collect at nodeGCPercent unless the user set GOGC.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	percent := func() int { p := debug.SetGCPercent(100); debug.SetGCPercent(p); return p }

	t.Setenv("GOGC", "100")
	tuneGC()
	if got := percent(); got != 100 {
		t.Errorf("with GOGC=100 the collector's target is %d", got)
	}
	os.Unsetenv("GOGC") // t.Setenv restores it afterwards
	tuneGC()
	if got := percent(); got != nodeGCPercent {
		t.Errorf("without GOGC the collector's target is %d, want %d", got, nodeGCPercent)
	}
}
