package harness

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestParsePhaseLine(t *testing.T) {
	for _, tc := range []struct {
		line    string
		name    string
		printed time.Duration
		ok      bool
	}{
		// What pkg/server's progress prints: "ketch: %-28s %6.1fs".
		{fmt.Sprintf("ketch: %-28s %6.1fs", "node Ready", 8.1), "node Ready", 8100 * time.Millisecond, true},
		{fmt.Sprintf("ketch: %-28s %6.1fs", "datastore ready", 0.0), "datastore ready", 0, true},
		{fmt.Sprintf("ketch: %-28s %6.1fs", "apiserver ready", 123.4), "apiserver ready", 123400 * time.Millisecond, true},
		{"ketch: stopping", "", 0, false},
		{"ketch: swap is on; the kubelet runs with failSwapOn=false", "", 0, false},
		// A message that happens to end in seconds reads as a phase; only the known phase
		// names are reported, so that is harmless.
		{"ketch: waited 10s", "waited", 10 * time.Second, true},
		{"I1122 02:26:00 something 1.0s", "", 0, false},
		{"ketch:  5.0s", "", 0, false},
	} {
		name, printed, ok := ParsePhaseLine(tc.line)
		if ok != tc.ok || name != tc.name || (ok && printed.Round(time.Millisecond) != tc.printed) {
			t.Errorf("ParsePhaseLine(%q) = %q, %v, %v; want %q, %v, %v", tc.line, name, printed, ok, tc.name, tc.printed, tc.ok)
		}
	}
}

func TestNotes(t *testing.T) {
	out := []string{
		"ketch: modprobe not found",
		fmt.Sprintf("ketch: %-28s %6.1fs", "node Ready", 8.1),
		"I1122 02:26:00 klog line",
		"ketch: modprobe not found",
		"ketch: cgroup v1",
	}
	if got := Notes(out); !slices.Equal(got, []string{"ketch: modprobe not found", "ketch: cgroup v1"}) {
		t.Errorf("Notes = %q", got)
	}
}
