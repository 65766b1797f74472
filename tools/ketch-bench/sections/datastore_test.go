package sections

import (
	"strings"
	"testing"

	"github.com/ketch-k8s/ketch/tools/ketch-bench/kvload"
)

func TestRatioCell(t *testing.T) {
	for _, tc := range []struct {
		k, e kvload.Measurement
		want string
	}{
		{kvload.RateM("r", 200, "ops/s"), kvload.RateM("r", 100, "ops/s"), "ketch better"},
		{kvload.LatencyM("l", 200), kvload.LatencyM("l", 100), "etcd better"},
		{kvload.BytesM("b", 102), kvload.BytesM("b", 100), "≈ same"},
		{kvload.PercentM("c", 0), kvload.PercentM("c", 0), "same"},
	} {
		if got := ratioCell(tc.k, tc.e); !strings.Contains(got, tc.want) {
			t.Errorf("ratioCell(%v, %v) = %q, want it to contain %q", tc.k.Value, tc.e.Value, got, tc.want)
		}
	}
}
