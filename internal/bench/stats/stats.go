// Package stats holds the statistics the benchmarks report: nearest-rank percentiles, and the
// median and range of the few runs a benchmark repeats. Medians of an even count are the lower
// middle value throughout, so that every median the benchmarks print is a value that was
// measured.
package stats

import (
	"math"
	"slices"
	"time"
)

// Percentiles returns the nearest-rank percentiles (0 < p <= 1) of d, zero for an empty d. It
// sorts d in place.
func Percentiles(d []time.Duration, ps ...float64) []time.Duration {
	out := make([]time.Duration, len(ps))
	if len(d) == 0 {
		return out
	}
	slices.Sort(d)
	for i, p := range ps {
		rank := int(math.Ceil(p*float64(len(d)))) - 1
		out[i] = d[min(max(rank, 0), len(d)-1)]
	}
	return out
}

// Median is the lower middle value of v, 0 for none. v is left as it is.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// Spread is the median and range of a few runs.
type Spread struct {
	Med, Min, Max time.Duration
	N             int
}

// SpreadOf is the spread of d, the zero Spread for none. d is left as it is.
func SpreadOf(d []time.Duration) Spread {
	if len(d) == 0 {
		return Spread{}
	}
	p := Percentiles(slices.Clone(d), 0.5, 1)
	return Spread{Med: p[0], Min: slices.Min(d), Max: p[1], N: len(d)}
}

// SpreadBy is the spread of f over items, leaving out the items for which f reports no value.
func SpreadBy[T any](items []T, f func(T) (time.Duration, bool)) Spread {
	var d []time.Duration
	for _, it := range items {
		if v, ok := f(it); ok {
			d = append(d, v)
		}
	}
	return SpreadOf(d)
}
