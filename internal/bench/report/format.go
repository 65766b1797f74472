package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/ketch-k8s/ketch/internal/bench/stats"
)

// Commas writes n with thousands separators.
func Commas(n int) string {
	if n < 0 {
		return "-" + Commas(-n)
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// Plural is "1 word" or "N words".
func Plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%s %ss", Commas(n), word)
}

// JoinInts is "1 / 16 / 256".
func JoinInts(v []int) string {
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = Commas(n)
	}
	return strings.Join(parts, " / ")
}

// Duration is a latency in milliseconds with three significant digits, or seconds from 10 s.
func Duration(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 1:
		return fmt.Sprintf("%.3f ms", ms)
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	case ms < 10000:
		return fmt.Sprintf("%.0f ms", ms)
	default:
		return fmt.Sprintf("%.1f s", ms/1000)
	}
}

// Seconds is a duration in seconds to the hundredth, as start-up times are shown.
func Seconds(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// Micros is a duration in whole microseconds, as round-trip times are shown.
func Micros(d time.Duration) string {
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

// Bytes is a size in binary units, to a tenth.
func Bytes(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", b)
	}
	s := fmt.Sprintf("%.1f", b)
	return strings.TrimSuffix(s, ".0") + " " + units[i]
}

// BitRate is a byte rate in Gbit/s and MB/s (decimal, as network rates are quoted).
func BitRate(bytesPerSec float64) string {
	return fmt.Sprintf("%.2f Gbit/s (%s MB/s)", bytesPerSec*8/1e9, Commas(int(bytesPerSec/1e6+0.5)))
}

// Spread is "median (min–max s)" in seconds, the median alone for one run, "—" for none.
func Spread(s stats.Spread) string {
	switch s.N {
	case 0:
		return "—"
	case 1:
		return Seconds(s.Med)
	}
	return fmt.Sprintf("%s (%.2f–%.2f s)", Seconds(s.Med), s.Min.Seconds(), s.Max.Seconds())
}

// Verdict compares a lower-is-better value with its target.
func Verdict(value, limit float64) string {
	if value <= limit {
		return "met"
	}
	return "**missed**"
}

// AtLeast compares a higher-is-better value with its target.
func AtLeast(value, limit float64) string {
	if value >= limit {
		return "met"
	}
	return "**missed**"
}
