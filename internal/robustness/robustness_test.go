package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ketch-k8s/ketch/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

const (
	trafficDuration    = 32 * time.Second
	killsDuringTraffic = 5
	// minTrafficAfterRestart is the least traffic the last incarnation with traffic gets.
	minTrafficAfterRestart = 3 * time.Second
	numClients             = 7
	porcupineTimeout       = 60 * time.Second
	// vizTimeout bounds the second, much slower porcupine pass that only runs on failure.
	vizTimeout = 30 * time.Second
)

var trafficConfig = TrafficConfig{MaxThink: 10 * time.Millisecond, OpTimeout: 5 * time.Second, PageLimit: 3}

// TestLinearizabilityUnderKill runs apiserver-shaped traffic and watches against the datastore
// while SIGKILLing and restarting it, then checks the recorded history with porcupine and with
// the offline validator (watch completeness, reads at revisions, durability of acknowledged
// writes).
func TestLinearizabilityUnderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 45 seconds")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 0))

	// No automatic compaction: the final check reads every revision of the run.
	d := testutil.StartDatastore(t, "", "--history-revisions=0")
	clock := NewClock()
	faults := NewFaults(d, clock)
	admin := d.Client()
	initRev := initialRevision(t, admin)

	watchCtx, stopWatches := context.WithCancel(context.Background())
	defer stopWatches()
	watchers := []*Watcher{
		NewWatcher("resuming", d.Client(), clock, faults, initRev+1, false),
		NewWatcher("reflector", d.Client(), clock, faults, initRev+1, true),
	}
	watchResults := make([]chan WatchHistory, len(watchers))
	for i, w := range watchers {
		watchResults[i] = make(chan WatchHistory, 1)
		go func() { watchResults[i] <- w.Run(watchCtx) }()
	}

	clients := make([]*clientv3.Client, numClients)
	for i := range clients {
		clients[i] = d.Client()
	}
	trafficCtx, stopTraffic := context.WithCancel(context.Background())
	defer stopTraffic()
	opsResult := make(chan []Operation, 1)
	go func() { opsResult <- NewTraffic(trafficConfig, clock, faults).Run(trafficCtx, clients, seed) }()

	// One kill at a random moment in each slice of the run, so restarts are spread out and
	// traffic runs against every incarnation of the process.
	start := time.Now()
	slice := trafficDuration / killsDuringTraffic
	for i := range killsDuringTraffic {
		at := time.Duration(i)*slice + slice/4 + time.Duration(rnd.Int64N(int64(slice/2)))
		time.Sleep(time.Until(start.Add(at)))
		faults.KillAndRestart(time.Duration(rnd.Int64N(int64(500 * time.Millisecond))))
	}
	// Traffic goes on for a while after the last restart too: a kill late in the last slice, with
	// a slow restart, would otherwise leave that incarnation almost no traffic, and the run would
	// fail checkWorkload for the schedule's sake rather than the datastore's.
	end := start.Add(trafficDuration)
	if after := time.Now().Add(minTrafficAfterRestart); after.After(end) {
		end = after
	}
	time.Sleep(time.Until(end))
	stopTraffic()
	ops := <-opsResult

	// A last kill with no traffic, so the final reads see only what survived a restart.
	faults.KillAndRestart(0)
	final := mustRead(t, admin, clock, Request{Kind: OpList})
	waitForWatchers(t, watchers, final.Resp.Rev, 30*time.Second)
	stopWatches()
	h := History{InitRev: initRev, Ops: ops, Final: &final, Kills: faults.Kills()}
	for _, ch := range watchResults {
		h.Watches = append(h.Watches, <-ch)
	}
	for rev := initRev; rev <= final.Resp.Rev; rev++ {
		h.Verify = append(h.Verify, read(admin, clock, Request{Kind: OpList, Rev: rev}))
	}
	logStats(t, h)

	checkStart := time.Now()
	info, linErr := CheckLinearizable(h, porcupineTimeout, vizTimeout)
	t.Logf("porcupine: %v in %v", errOrOK(linErr), time.Since(checkStart).Round(time.Millisecond))
	valErr := Validate(h)
	workErr := checkWorkload(h)
	if linErr == nil && valErr == nil && workErr == nil {
		return
	}
	logData, _ := os.ReadFile(d.LogPath)
	dir, err := SaveArtifacts(h, info, map[string][]byte{"datastore.log": logData})
	if err != nil {
		t.Errorf("saving artifacts: %v", err)
	}
	t.Fatalf("seed %d; history, porcupine visualization and datastore log kept in %s\nlinearizability: %v\nvalidation: %v\nworkload: %v",
		seed, dir, errOrOK(linErr), errOrOK(valErr), errOrOK(workErr))
}

func errOrOK(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// initialRevision reads the empty prefix before traffic starts; the model starts from it.
func initialRevision(t *testing.T, c *clientv3.Client) int64 {
	t.Helper()
	op := mustRead(t, c, NewClock(), Request{Kind: OpList})
	if op.Resp.Count != 0 {
		t.Fatalf("prefix %s is not empty at start: %v", keyPrefix, op.Resp)
	}
	return op.Resp.Rev
}

// read runs a request outside the workload; Validate reports it if it failed.
func read(c *clientv3.Client, clock *Clock, req Request) Operation {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	op := Operation{Client: -1, Req: req, Call: clock.Now()}
	resp, err := execute(ctx, c, req)
	if err != nil {
		resp = Response{Err: err.Error()}
	}
	op.Resp, op.Return = resp, clock.Now()
	return op
}

// mustRead is read for reads without which nothing can be checked.
func mustRead(t *testing.T, c *clientv3.Client, clock *Clock, req Request) Operation {
	t.Helper()
	op := read(c, clock, req)
	if op.Resp.Err != "" {
		t.Fatalf("%v: %s", req, op.Resp.Err)
	}
	return op
}

// waitForWatchers gives the watchers time to deliver everything up to rev; a watcher that never
// gets there is reported by Validate, together with everything else that is wrong.
func waitForWatchers(t *testing.T, ws []*Watcher, rev int64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for _, w := range ws {
		for w.LastRev() < rev && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if w.LastRev() < rev {
			t.Logf("watch %s is at revision %d after %v, want %d", w.name, w.LastRev(), timeout, rev)
		}
	}
}

// checkWorkload guards against a vacuous pass: the run must have killed the datastore while
// writes were being acknowledged, and traffic must have succeeded in every incarnation.
func checkWorkload(h History) error {
	var problems []string
	if n := len(h.Kills) - 1; n < 3 {
		problems = append(problems, fmt.Sprintf("only %d kills during traffic", n))
	}
	bounds := []int64{0}
	for _, k := range h.Kills {
		bounds = append(bounds, k.Ready)
	}
	acked := make([]int, len(bounds))
	for _, op := range h.Ops {
		if op.Req.Kind.isWrite() && op.Resp.Err == "" && op.Resp.Succeeded {
			acked[sort.Search(len(bounds), func(i int) bool { return bounds[i] > op.Call })-1]++
		}
	}
	for i, n := range acked[:len(acked)-1] {
		if n < 20 {
			problems = append(problems, fmt.Sprintf("only %d acknowledged writes in incarnation %d", n, i))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("workload too weak to mean anything: %s", strings.Join(problems, "; "))
	}
	return nil
}

func logStats(t *testing.T, h History) {
	counts := map[string]int{}
	for _, op := range h.Ops {
		outcome := "ok"
		switch {
		case op.Resp.Err != "":
			outcome = "error"
		case op.Req.Kind.isWrite() && !op.Resp.Succeeded:
			outcome = "conflict"
		case op.Req.Kind == OpList && op.Req.Rev != 0:
			outcome = "ok-at-rev"
		}
		counts[op.Req.Kind.String()+"/"+outcome]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, counts[k])
	}
	t.Logf("%d operations:%s", len(h.Ops), b.String())
	putValues := map[int64]bool{}
	for _, r := range h.Watches[0].Responses {
		for _, e := range r.Events {
			putValues[e.KV.Value] = !e.Delete
		}
	}
	unknownPuts, applied := 0, 0
	for _, op := range h.Ops {
		if op.Resp.Err != "" && (op.Req.Kind == OpCreate || op.Req.Kind == OpUpdate) {
			unknownPuts++
			if putValues[op.Req.Value] {
				applied++
			}
		}
	}
	t.Logf("%d creates/updates of unknown outcome, %d of them turned out applied", unknownPuts, applied)
	t.Logf("revisions %d..%d, %d kills", h.InitRev, h.Final.Resp.Rev, len(h.Kills))
	for _, k := range h.Kills {
		t.Logf("  kill at %.3fs, exited %.3fs, ready %.3fs", float64(k.Signaled)/1e9, float64(k.Exited)/1e9, float64(k.Ready)/1e9)
	}
	for _, w := range h.Watches {
		events, streams, progress := 0, map[int]bool{}, 0
		for _, r := range w.Responses {
			events += len(r.Events)
			streams[r.Stream] = true
			if r.Progress {
				progress++
			}
		}
		t.Logf("watch %s: %d responses, %d events, %d progress notifications, %d streams", w.Name, len(w.Responses), events, progress, len(streams))
	}
}
