package podnet

import (
	"slices"
	"testing"
	"time"
)

func TestParseMicros(t *testing.T) {
	got, err := ParseMicros("812.4\n1200.0\n 95.0\n")
	want := []time.Duration{812400 * time.Nanosecond, 1200 * time.Microsecond, 95 * time.Microsecond}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ParseMicros = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"", "12\nerror: timeout\n", "-1"} {
		if _, err := ParseMicros(bad); err == nil {
			t.Errorf("ParseMicros(%q): want an error", bad)
		}
	}
}

func TestRatio(t *testing.T) {
	n := Result{Same: Path{Streams: []float64{10, 12, 11}}, Cross: Path{Streams: []float64{8, 9, 7}}}
	if got := n.Ratio(); got < 0.727 || got > 0.728 {
		t.Errorf("ratio %v, want 8/11", got)
	}
	if got := n.RunRatios(); len(got) != 3 || got[0] != 0.8 {
		t.Errorf("run ratios %v", got)
	}
}
