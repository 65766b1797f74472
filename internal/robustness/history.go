package robustness

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// Clock gives every recorder timestamps on one monotonic time line, so real-time order between
// clients, watchers and faults can be compared.
type Clock struct{ base time.Time }

// NewClock starts a time line at zero now.
func NewClock() *Clock { return &Clock{base: time.Now()} }

// Now returns nanoseconds since the clock started.
func (c *Clock) Now() int64 { return int64(time.Since(c.base)) }

// Operation is one recorded request with the interval in which it was outstanding.
type Operation struct {
	Client int
	Req    Request
	Resp   Response
	Call   int64
	Return int64
}

// Kill records one SIGKILL and restart of the datastore.
type Kill struct {
	Signaled int64 // just before SIGKILL
	Exited   int64 // the process was reaped; nothing it held in memory can be applied after this
	Ready    int64 // the restarted process answered Status
}

// WatchEvent is one event with key indices and write ids as in KV.
type WatchEvent struct {
	Delete bool
	KV     KV
	PrevKV *KV `json:",omitempty"`
}

// WatchResponse is one message received on a watch channel.
type WatchResponse struct {
	Time       int64
	Stream     int   // which Watch call of this watcher delivered it
	Rev        int64 // header revision
	Events     []WatchEvent
	Progress   bool
	Canceled   bool
	ByClient   bool // canceled because the watcher itself stopped watching
	CompactRev int64
	Err        string `json:",omitempty"`
}

// WatchHistory is everything one watcher received, across re-establishments.
type WatchHistory struct {
	Name      string
	StartRev  int64
	Responses []WatchResponse
}

// History is everything a run recorded.
type History struct {
	InitRev int64
	Ops     []Operation
	// Final is a full read of the prefix after the last restart, once traffic stopped.
	Final *Operation
	// Verify are reads of the prefix at every revision after the last restart; they are checked
	// offline only, since they all happen at the final state.
	Verify  []Operation
	Watches []WatchHistory
	Kills   []Kill
}

// porcupineOperations turns the history into porcupine's form. Failed reads are dropped since
// they had no effect. A failed write may have been applied at any time after its call, but only
// until the process that could still apply it died: the first kill after the client gave up
// (the etcd client never resends after returning, and a killed process applies nothing later;
// whatever it made durable counts as applied before it died, since no one can observe the store
// while it is down). Writes with no later kill stay open until the end of time. The bound
// matters: left open, every such write multiplies porcupine's search, and a violation in the
// middle of a run could not be proven within minutes.
func porcupineOperations(h History) []porcupine.Operation {
	exits := make([]int64, len(h.Kills))
	for i, k := range h.Kills {
		exits[i] = k.Exited
	}
	sort.Slice(exits, func(i, j int) bool { return exits[i] < exits[j] })
	ops := make([]porcupine.Operation, 0, len(h.Ops)+1)
	// The visualization draws one row per client and needs non-negative ids.
	extraClient := 0
	for _, op := range h.Ops {
		extraClient = max(extraClient, op.Client+1)
	}
	add := func(op Operation) {
		if op.Client < 0 {
			op.Client = extraClient
		}
		ret := op.Return
		if op.Resp.Err != "" {
			if !op.Req.Kind.isWrite() {
				return
			}
			ret = math.MaxInt64
			if i := sort.Search(len(exits), func(i int) bool { return exits[i] >= op.Return }); i < len(exits) {
				ret = exits[i]
			}
		}
		ops = append(ops, porcupine.Operation{ClientId: op.Client, Input: op.Req, Call: op.Call, Output: op.Resp, Return: ret})
	}
	for _, op := range h.Ops {
		add(op)
	}
	if h.Final != nil {
		add(*h.Final)
	}
	return ops
}

func (e WatchEvent) String() string {
	kind := "put " + e.KV.String()
	if e.Delete {
		kind = fmt.Sprintf("delete k%02d@%d", e.KV.Key, e.KV.ModRev)
	}
	if e.PrevKV == nil {
		return kind + " prev=none"
	}
	return kind + " prev=" + e.PrevKV.String()
}
