package lifecycle

import (
	"os"
	"runtime/debug"

	"k8s.io/klog/v2"
)

// nodeGCPercent is the Go garbage collector's target for a node process (server or agent) when
// the environment sets none: the heap may grow 50 % over its live data between collections,
// instead of Go's default 100 %. A node is one long-lived process whose live heap is large (an
// idle server holds about 125 MiB) and mostly stable, so the default's headroom is mostly
// memory that is never used: measured on an idle server with its addons, GOGC=50 holds about
// 42 MiB less anonymous memory than the default, for about 14 % more of the server's CPU in a
// burst of pod starts (docs/benchmarks.md, "Lean", has both runs).
const nodeGCPercent = 50

// tuneGC applies nodeGCPercent unless the user chose with GOGC, which the Go runtime has read
// already. GOMEMLIMIT is left to the user: a soft limit is right only when the machine's memory
// for ketch is known.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	debug.SetGCPercent(nodeGCPercent)
	klog.V(1).InfoS("Go garbage collector target set", "GOGC", nodeGCPercent)
}
