package robustness

import (
	"fmt"
	"strings"
)

// maxReported caps the violations listed, since one lost write tends to cascade.
const maxReported = 40

// Validate checks a history offline, independently of porcupine, and returns every violation
// found. The watch streams are taken as the authoritative sequence of revisions only after they
// are checked to be contiguous, identical across watchers and consistent with etcd's
// create/mod revision and version rules; every read, every failed compare and every
// acknowledged write is then checked against the state replayed at its revision.
func Validate(h History) error {
	v := &validator{h: h}
	v.run()
	if len(v.errs) == 0 {
		return nil
	}
	msg := strings.Join(v.errs, "\n")
	if v.dropped > 0 {
		msg += fmt.Sprintf("\n... and %d more", v.dropped)
	}
	return fmt.Errorf("%d violations:\n%s", len(v.errs)+v.dropped, msg)
}

type validator struct {
	h       History
	errs    []string
	dropped int
	// events[i] happened at revision InitRev+1+i; states[i] is the state at revision InitRev+i.
	events []WatchEvent
	states []State
}

func (v *validator) failf(format string, args ...any) {
	if len(v.errs) >= maxReported {
		v.dropped++
		return
	}
	v.errs = append(v.errs, fmt.Sprintf(format, args...))
}

func (v *validator) run() {
	if len(v.h.Watches) == 0 || v.h.Final == nil {
		v.failf("the history lacks a watch or the final read")
		return
	}
	for i, w := range v.h.Watches {
		evs := v.checkWatch(w)
		if i == 0 {
			v.events = evs
			continue
		}
		if n := firstDifference(evs, v.events); n >= 0 {
			v.failf("watch %s and watch %s differ at revision %d", w.Name, v.h.Watches[0].Name, v.h.InitRev+1+int64(n))
		}
	}
	v.replay()
	if v.h.Final.Resp.Rev != v.lastRev() {
		v.failf("the final read is at revision %d but the watch history ends at %d", v.h.Final.Resp.Rev, v.lastRev())
	}
	v.checkWrites()
	v.checkResponses(v.h.Ops, false)
	v.checkResponses([]Operation{*v.h.Final}, true)
	v.checkResponses(v.h.Verify, true)
}

func (v *validator) lastRev() int64 { return v.h.InitRev + int64(len(v.events)) }

func firstDifference(a, b []WatchEvent) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		if i >= len(a) || i >= len(b) || !a[i].equal(b[i]) {
			return i
		}
	}
	return -1
}

func (e WatchEvent) equal(o WatchEvent) bool {
	if e.Delete != o.Delete || e.KV != o.KV || (e.PrevKV == nil) != (o.PrevKV == nil) {
		return false
	}
	return e.PrevKV == nil || *e.PrevKV == *o.PrevKV
}

// checkWatch returns the contiguous run of events a watch delivered from its start revision.
// Every write touches the watched prefix and writes exactly one key, so each revision must
// carry exactly one event: a missing revision is a gap, a repeated one a duplicate, and a
// progress notification must name exactly the last revision delivered.
func (v *validator) checkWatch(w WatchHistory) []WatchEvent {
	var evs []WatchEvent
	last, header, broken := w.StartRev-1, int64(0), false
	for _, r := range w.Responses {
		if r.ByClient {
			continue
		}
		where := fmt.Sprintf("watch %s (stream %d, header revision %d)", w.Name, r.Stream, r.Rev)
		if r.Canceled || r.CompactRev != 0 || r.Err != "" {
			v.failf("%s: canceled by the datastore (compact revision %d): %s", where, r.CompactRev, r.Err)
			continue
		}
		if r.Rev < header {
			v.failf("%s: header revision went back from %d", where, header)
		}
		header = max(header, r.Rev)
		if r.Progress && r.Rev != last {
			v.failf("%s: progress notification, but the last event delivered was at revision %d", where, last)
		}
		for _, e := range r.Events {
			switch rev := e.KV.ModRev; {
			case rev <= last:
				v.failf("%s: event at revision %d after revision %d was delivered (duplicate or out of order)", where, rev, last)
			case rev > last+1:
				v.failf("%s: gap: revisions %d..%d never delivered", where, last+1, rev-1)
				last, broken = rev, true
			default:
				last = rev
				if !broken {
					evs = append(evs, e)
				}
			}
		}
		if n := len(r.Events); n > 0 && r.Rev < r.Events[n-1].KV.ModRev {
			v.failf("%s: header revision below its last event's revision %d", where, r.Events[n-1].KV.ModRev)
		}
	}
	if want := v.h.Final.Resp.Rev; last != want {
		v.failf("watch %s ended at revision %d, but the final revision is %d", w.Name, last, want)
	}
	return evs
}

// replay rebuilds the state at every revision from the events, checking that each event's
// prev_kv, create revision and version follow from the state before it.
func (v *validator) replay() {
	s := State{Rev: v.h.InitRev}
	v.states = []State{s}
	for i, e := range v.events {
		rev := v.h.InitRev + 1 + int64(i)
		k := e.KV.Key
		if k < 0 {
			v.failf("revision %d: event on a key the workload never writes", rev)
			v.events = v.events[:i]
			return
		}
		prev, existed := s.kv(k)
		if existed != (e.PrevKV != nil) || (existed && *e.PrevKV != prev) {
			v.failf("revision %d: event on k%02d has prev_kv %v, want %v (existed=%v)", rev, k, e.PrevKV, prev, existed)
		}
		if e.Delete {
			if !existed {
				v.failf("revision %d: delete event on k%02d, which did not exist", rev, k)
			}
			s.Keys[k] = keyState{}
			s.Rev = rev
		} else {
			s = s.put(k, e.KV.Value)
			if want, _ := s.kv(k); e.KV != want {
				v.failf("revision %d: put event %v, want %v", rev, e.KV, want)
			}
		}
		v.states = append(v.states, s)
	}
}

func (v *validator) stateAt(rev int64) (State, bool) {
	i := rev - v.h.InitRev
	if i < 0 || i >= int64(len(v.states)) {
		return State{}, false
	}
	return v.states[i], true
}

func describe(op Operation) string {
	return fmt.Sprintf("client %d [%.3fs, %.3fs] %v -> %v", op.Client, float64(op.Call)/1e9, float64(op.Return)/1e9, op.Req, op.Resp)
}

type deleteTarget struct {
	key         int
	expectedRev int64
}

// checkWrites attributes every event to the write that caused it: puts by their unique value,
// deletes by key and the mod revision they compared against. Writes of unknown outcome may or
// may not show up; acknowledged ones must show up exactly at the revision they were answered
// with, and writes answered as failed must not show up at all.
func (v *validator) checkWrites() {
	ops := v.h.Ops
	byValue := map[int64]int{}
	deletes := map[deleteTarget][]int{}
	for i, op := range ops {
		switch op.Req.Kind {
		case OpCreate, OpUpdate:
			byValue[op.Req.Value] = i
		case OpDelete:
			t := deleteTarget{op.Req.Key, op.Req.ExpectedRev}
			deletes[t] = append(deletes[t], i)
		}
	}
	appliedAt := map[int]int64{}
	for i, e := range v.events {
		rev := v.h.InitRev + 1 + int64(i)
		before := v.states[i].Keys[e.KV.Key]
		var candidates []int
		if e.Delete {
			candidates = deletes[deleteTarget{e.KV.Key, before.ModRev}]
		} else if j, ok := byValue[e.KV.Value]; ok && ops[j].Req.Key == e.KV.Key {
			candidates = []int{j}
		}
		j := v.attribute(candidates, appliedAt, rev)
		if j < 0 {
			v.failf("revision %d: %v (mod revision before: %d) was not caused by any write that may have been applied there", rev, e, before.ModRev)
			continue
		}
		appliedAt[j] = rev
		if ops[j].Req.ExpectedRev != before.ModRev {
			v.failf("revision %d applied %s although k%02d had mod revision %d", rev, describe(ops[j]), e.KV.Key, before.ModRev)
		}
	}
	for i, op := range ops {
		if !op.Req.Kind.isWrite() || op.Resp.Err != "" || !op.Resp.Succeeded {
			continue
		}
		want := Response{Rev: op.Resp.Rev, Succeeded: true}
		if op.Req.Kind == OpDelete {
			want.Deleted = 1
		}
		if !op.Resp.equal(want) {
			v.failf("acknowledged %s: malformed response, want %v", describe(op), want)
		}
		if rev, ok := appliedAt[i]; !ok || rev != op.Resp.Rev {
			v.failf("acknowledged %s is not in the watch history at revision %d (last revision %d)", describe(op), op.Resp.Rev, v.lastRev())
		}
	}
}

// attribute picks which candidate write produced the event at rev: one acknowledged at rev,
// else one of unknown outcome not yet attributed; -1 if none. Writes answered as failed or at a
// different revision can never be picked.
func (v *validator) attribute(candidates []int, appliedAt map[int]int64, rev int64) int {
	unknown := -1
	for _, j := range candidates {
		if _, taken := appliedAt[j]; taken {
			continue
		}
		resp := v.h.Ops[j].Resp
		switch {
		case resp.Err == "" && resp.Succeeded && resp.Rev == rev:
			return j
		case resp.Err != "" && unknown < 0:
			unknown = j
		}
	}
	return unknown
}

// checkResponses checks every answered read, and every answered failed compare, against the
// state at the revision it was served from. Errors only count when mustAnswer is set: the
// reads made after the last restart, with nothing else going on, have no excuse to fail.
func (v *validator) checkResponses(ops []Operation, mustAnswer bool) {
	for _, op := range ops {
		req, resp := op.Req, op.Resp
		if resp.Err != "" && mustAnswer {
			v.failf("%s: the datastore must answer this after the last restart", describe(op))
		}
		if resp.Err != "" || (req.Kind.isWrite() && resp.Succeeded) {
			continue
		}
		at := resp.Rev
		if req.Kind == OpList && req.Rev != 0 {
			at = req.Rev
			if resp.Rev < req.Rev {
				v.failf("%s: header revision below the requested revision", describe(op))
			}
		}
		s, ok := v.stateAt(at)
		if !ok {
			v.failf("%s: revision %d is outside the history [%d, %d]", describe(op), at, v.h.InitRev, v.lastRev())
			continue
		}
		var want Response
		switch req.Kind {
		case OpGet:
			want = s.rangeResp(req.Key, req.Key+1, 1)
		case OpList:
			want = s.rangeResp(req.Key, numKeys, req.Limit)
		case OpCreate:
			want = Response{}
		default:
			want = s.rangeResp(req.Key, req.Key+1, 0)
		}
		want.Rev = resp.Rev
		if req.Kind.isWrite() && s.Keys[req.Key].ModRev == req.ExpectedRev {
			v.failf("%s: compare failed, but k%02d had mod revision %d at revision %d", describe(op), req.Key, req.ExpectedRev, at)
		} else if !resp.equal(want) {
			v.failf("%s: want %v (state at revision %d)", describe(op), want, at)
		}
	}
}
