package sections

import (
	"testing"
	"time"

	"github.com/ketch-k8s/ketch/internal/harness"
)

func TestStartRunStats(t *testing.T) {
	runs := []StartRun{
		{Phases: []harness.PhaseTime{{Name: "datastore ready", Observed: 1300 * time.Millisecond, Printed: time.Second}, {Name: harness.ReadyPhase, Observed: 9300 * time.Millisecond, Printed: 9 * time.Second}}, Stop: 2 * time.Second},
		{Phases: []harness.PhaseTime{{Name: "datastore ready", Observed: 1500 * time.Millisecond, Printed: time.Second}, {Name: harness.ReadyPhase, Observed: 8500 * time.Millisecond, Printed: 8 * time.Second}}},
		{Phases: []harness.PhaseTime{{Name: "datastore ready", Observed: 1400 * time.Millisecond, Printed: time.Second}, {Name: harness.ReadyPhase, Observed: 10400 * time.Millisecond, Printed: 10 * time.Second}}, Stop: time.Second},
	}
	if s := phaseSpread(runs, harness.ReadyPhase); s.Med != 9300*time.Millisecond || s.Min != 8500*time.Millisecond || s.Max != 10400*time.Millisecond {
		t.Errorf("ready spread %+v", s)
	}
	if s := execOffset(runs); s.Med != 400*time.Millisecond || s.Min != 300*time.Millisecond || s.Max != 500*time.Millisecond {
		t.Errorf("exec offset %+v", s)
	}
	// A run without a clean stop is left out.
	if s := stopSpread(runs); s.N != 2 || s.Med != time.Second {
		t.Errorf("stop spread %+v", s)
	}
	if got := runList(runs); got != "9.30 s, 8.50 s, 10.40 s" {
		t.Errorf("runList = %q", got)
	}
}

func TestPSSCell(t *testing.T) {
	one := harness.MemGroup{PSS: 3 << 20, Anon: 1 << 20, Procs: 1}
	if got, want := pssCell(one), "3 MiB (1 MiB anon, 1 process)"; got != want {
		t.Errorf("pssCell = %q, want %q", got, want)
	}
	if got, want := pssCell(one.Plus(one)), "6 MiB (2 MiB anon, 2 processes)"; got != want {
		t.Errorf("pssCell = %q, want %q", got, want)
	}
	if got, want := pssCell(harness.MemGroup{}), "0 B (0 B anon, 0 processes)"; got != want {
		t.Errorf("pssCell = %q, want %q", got, want)
	}
}
