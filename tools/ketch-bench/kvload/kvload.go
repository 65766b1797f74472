// Package kvload is the datastore benchmark's workload: what `ketch-bench datastore` does to a
// server of the etcd API (ketch's datastore or etcd) and measures, phase by phase. Every request
// goes through the etcd client kube-apiserver uses, so that both targets see exactly the calls
// a cluster makes.
package kvload

import (
	"fmt"
	"math"
	"time"

	"github.com/ketch-k8s/ketch/internal/bench/report"
)

// Sizes are the workload parameters. Both targets always run with the same sizes.
type Sizes struct {
	Rounds        int // of each load phase per target; rows report the median
	PutClients    []int
	PutOps        []int // per put level, measured after a tenth as many unmeasured
	CASClients    []int
	CASOps        []int // per CAS level
	CASKeys       int
	ListKeys      int
	ListValue     int
	ListLimit     int64
	ListRuns      int
	ListMaxTime   time.Duration
	Watchers      int
	WatchObjects  int
	WatchWarmup   int
	WatchEvents   int
	WatchMaxTime  time.Duration
	DBKeys        int
	DBRounds      int
	DBClients     int
	PutValue      int
	Idle          time.Duration // after the load phases, before the memory sample
	PhaseTimeout  time.Duration
	DBFillTimeout time.Duration
}

// Env is what a phase needs to know about the server it measures.
type Env struct {
	Endpoint string
	PID      int
	DataDir  string
	// DBFile locates the database file whose size is reported.
	DBFile  func(dataDir string) (string, error)
	Sizes   Sizes
	Payload *Payload
	Logf    func(string, ...any)
}

// Result collects what phases measured on one target.
type Result struct {
	Measurements []Measurement
	Notes        []string
}

func (r *Result) add(m ...Measurement) { r.Measurements = append(r.Measurements, m...) }

// Unit is how a measurement is shown and which direction is better.
type Unit int

const (
	UnitRate    Unit = iota // per second; higher is better
	UnitLatency             // nanoseconds; lower is better
	UnitPercent             // fraction 0..1; lower is better
	UnitBytes               // lower is better
)

// Measurement is one table row's value for one target.
type Measurement struct {
	Name   string
	Unit   Unit
	Suffix string // rate unit shown after the number, e.g. "ops/s"
	Value  float64
}

func RateM(name string, v float64, suffix string) Measurement {
	return Measurement{Name: name, Unit: UnitRate, Suffix: suffix, Value: v}
}
func LatencyM(name string, d time.Duration) Measurement {
	return Measurement{Name: name, Unit: UnitLatency, Value: float64(d)}
}
func PercentM(name string, frac float64) Measurement {
	return Measurement{Name: name, Unit: UnitPercent, Value: frac}
}
func BytesM(name string, b float64) Measurement {
	return Measurement{Name: name, Unit: UnitBytes, Value: b}
}

// Format is the measurement's table cell.
func (m Measurement) Format() string {
	switch m.Unit {
	case UnitRate:
		return report.Commas(int(math.Round(m.Value))) + " " + m.Suffix
	case UnitLatency:
		return report.Duration(time.Duration(m.Value))
	case UnitPercent:
		return fmt.Sprintf("%.1f %%", 100*m.Value)
	default:
		return report.Bytes(m.Value)
	}
}
