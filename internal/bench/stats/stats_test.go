package stats

import (
	"slices"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i))
	}
	p := Percentiles(d, 0.5, 0.99, 1)
	if p[0] != 50 || p[1] != 99 || p[2] != 100 {
		t.Fatalf("got %v, want [50 99 100]", p)
	}
	if p := Percentiles(nil, 0.5); p[0] != 0 {
		t.Fatalf("empty: got %v", p)
	}
}

func TestSpread(t *testing.T) {
	s := SpreadOf([]time.Duration{9 * time.Second, 7 * time.Second, 8 * time.Second})
	if s.Med != 8*time.Second || s.Min != 7*time.Second || s.Max != 9*time.Second || s.N != 3 {
		t.Fatalf("spread of 3: %+v", s)
	}
	// An even count takes the lower middle, like the datastore bench's medians.
	if s := SpreadOf([]time.Duration{4, 2}); s.Med != 2 || s.Min != 2 || s.Max != 4 {
		t.Errorf("spread of 2: %+v", s)
	}
	in := []time.Duration{3, 1, 2}
	SpreadOf(in)
	if !slices.Equal(in, []time.Duration{3, 1, 2}) {
		t.Errorf("SpreadOf reordered its input: %v", in)
	}
	if s := SpreadOf(nil); s != (Spread{}) {
		t.Errorf("empty spread: %+v", s)
	}
}

func TestMedian(t *testing.T) {
	if got := Median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median of 3: %v", got)
	}
	in := []float64{4, 2}
	if got := Median(in); got != 2 {
		t.Errorf("median of 2 (lower middle): %v", got)
	}
	if !slices.Equal(in, []float64{4, 2}) {
		t.Errorf("Median reordered its input: %v", in)
	}
	if Median(nil) != 0 {
		t.Error("median of nothing")
	}
}
