package robustness

import (
	"strings"
	"testing"
	"time"
)

// sim builds a consistent history by running requests one at a time through the model and
// recording the watch responses a correct datastore would send to two watchers.
type sim struct {
	h       History
	states  []State // states[i] is the state at revision InitRev+i
	now     int64
	streamB int // watcher b's current Watch call
}

func newSim() *sim {
	return &sim{
		h:      History{InitRev: 1, Watches: []WatchHistory{{Name: "a", StartRev: 2}, {Name: "b", StartRev: 2}}},
		states: []State{{Rev: 1}},
	}
}

func (s *sim) cur() State { return s.states[len(s.states)-1] }

// do runs req and records the answer.
func (s *sim) do(client int, req Request) Response {
	resp := s.exec(req, true)
	s.record(client, req, resp)
	return resp
}

// unknown runs req, applying it or not, and records that the client saw an error.
func (s *sim) unknown(client int, req Request, applied bool) {
	s.exec(req, applied)
	s.record(client, req, Response{Err: "connection reset by peer"})
}

func (s *sim) record(client int, req Request, resp Response) {
	s.h.Ops = append(s.h.Ops, Operation{Client: client, Req: req, Resp: resp, Call: s.now, Return: s.now + 5})
	s.now += 10
}

func (s *sim) exec(req Request, applied bool) Response {
	cur := s.cur()
	if req.Kind == OpList && req.Rev != 0 {
		resp := s.states[req.Rev-s.h.InitRev].rangeResp(req.Key, numKeys, req.Limit)
		resp.Rev = cur.Rev
		return resp
	}
	next, resp := apply(cur, req)
	if !applied || next.Rev == cur.Rev {
		return resp
	}
	s.states = append(s.states, next)
	ev := WatchEvent{Delete: req.Kind == OpDelete}
	if ev.Delete {
		// What toKV makes of a real delete event: key and revision only, empty value.
		ev.KV = KV{Key: req.Key, Value: -1, ModRev: next.Rev}
	} else {
		ev.KV, _ = next.kv(req.Key)
	}
	if prev, ok := cur.kv(req.Key); ok {
		ev.PrevKV = &prev
	}
	for i, stream := range []int{0, s.streamB} {
		w := &s.h.Watches[i]
		w.Responses = append(w.Responses, WatchResponse{Time: s.now, Stream: stream, Rev: next.Rev, Events: []WatchEvent{ev}})
	}
	return resp
}

func (s *sim) progress() {
	s.h.Watches[0].Responses = append(s.h.Watches[0].Responses, WatchResponse{Time: s.now, Rev: s.cur().Rev, Progress: true})
}

// reestablish makes watcher b cancel its watch and watch again, as a reflector does after a
// restart; the client-side cancellation must not count against the datastore.
func (s *sim) reestablish() {
	w := &s.h.Watches[1]
	w.Responses = append(w.Responses, WatchResponse{Time: s.now, Stream: s.streamB, Canceled: true, ByClient: true, Err: "context canceled"})
	s.streamB++
}

func (s *sim) finish() History {
	final := s.exec(Request{Kind: OpList}, true)
	s.h.Final = &Operation{Client: 9, Req: Request{Kind: OpList}, Resp: final, Call: s.now, Return: s.now + 5}
	for rev := s.h.InitRev; rev <= s.cur().Rev; rev++ {
		req := Request{Kind: OpList, Rev: rev}
		s.h.Verify = append(s.h.Verify, Operation{Client: 9, Req: req, Resp: s.exec(req, true)})
	}
	return s.h
}

// scenario covers every request shape, conflicts, delete and re-create, paged lists at a
// revision, writes of unknown outcome both applied and not, and a progress notification.
func scenario() History {
	s := newSim()
	s.do(0, Request{Kind: OpCreate, Key: 0, Value: 1})                 // rev 2
	s.do(1, Request{Kind: OpCreate, Key: 1, Value: 2})                 // rev 3
	s.do(0, Request{Kind: OpUpdate, Key: 0, Value: 3, ExpectedRev: 2}) // rev 4
	s.do(1, Request{Kind: OpUpdate, Key: 0, Value: 4, ExpectedRev: 2}) // conflict
	s.do(2, Request{Kind: OpCreate, Key: 1, Value: 5})                 // conflict
	first := s.do(2, Request{Kind: OpList, Limit: 1})
	s.do(0, Request{Kind: OpCreate, Key: 3, Value: 6}) // rev 5, between the pages
	s.do(2, Request{Kind: OpList, Key: 1, Limit: 1, Rev: first.Rev})
	s.progress()
	s.unknown(1, Request{Kind: OpCreate, Key: 2, Value: 7}, true)                  // rev 6
	s.unknown(0, Request{Kind: OpUpdate, Key: 1, Value: 8, ExpectedRev: 3}, false) // lost
	s.reestablish()
	s.do(0, Request{Kind: OpDelete, Key: 0, ExpectedRev: 4}) // rev 7
	s.do(1, Request{Kind: OpCreate, Key: 0, Value: 9})       // rev 8
	s.do(2, Request{Kind: OpGet, Key: 0})
	s.do(0, Request{Kind: OpDelete, Key: 1, ExpectedRev: 2})                        // conflict
	s.unknown(2, Request{Kind: OpDelete, Key: 2, ExpectedRev: 6}, true)             // rev 9
	s.do(1, Request{Kind: OpUpdate, Key: 1, Value: 10, ExpectedRev: 3})             // rev 10
	s.unknown(0, Request{Kind: OpUpdate, Key: 1, Value: 11, ExpectedRev: 10}, true) // rev 11
	s.progress()
	s.do(2, Request{Kind: OpList, Limit: 2})
	return s.finish()
}

func TestValidateAcceptsConsistentHistory(t *testing.T) {
	h := scenario()
	if err := Validate(h); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckLinearizable(h, 10*time.Second, time.Second); err != nil {
		t.Fatal(err)
	}
}

// opAt returns the index of the first operation matching kind and key with the given outcome.
func opAt(h *History, kind OpKind, key int, succeeded bool) int {
	for i, op := range h.Ops {
		if op.Req.Kind == kind && op.Req.Key == key && op.Resp.Err == "" && op.Resp.Succeeded == succeeded {
			return i
		}
	}
	panic("no such operation")
}

// eventResponse returns the index of watcher w's response carrying revision rev.
func eventResponse(h *History, w int, rev int64) int {
	for i, r := range h.Watches[w].Responses {
		if len(r.Events) > 0 && r.Events[0].KV.ModRev == rev {
			return i
		}
	}
	panic("no such event")
}

func inAllWatches(h *History, rev int64, f func(e *WatchEvent)) {
	for w := range h.Watches {
		f(&h.Watches[w].Responses[eventResponse(h, w, rev)].Events[0])
	}
}

func TestValidateRejects(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(h *History)
		want   string
	}{
		{"gap in one watch", func(h *History) {
			rs := h.Watches[1].Responses
			i := eventResponse(h, 1, 4)
			h.Watches[1].Responses = append(rs[:i:i], rs[i+1:]...)
		}, "gap: revisions 4..4"},
		{"duplicate event", func(h *History) {
			i := eventResponse(h, 0, 5)
			rs := h.Watches[0].Responses
			h.Watches[0].Responses = append(rs[:i+1:i+1], rs[i:]...)
		}, "duplicate or out of order"},
		{"progress notification ahead of delivered events", func(h *History) {
			for i, r := range h.Watches[0].Responses {
				if r.Progress {
					h.Watches[0].Responses[i].Rev++
					return
				}
			}
		}, "progress notification"},
		{"header revision goes back", func(h *History) {
			h.Watches[0].Responses[eventResponse(h, 0, 7)].Rev = 9
		}, "went back"},
		{"watch canceled by the datastore", func(h *History) {
			h.Watches[1].Responses = append(h.Watches[1].Responses, WatchResponse{Rev: 11, Canceled: true, Err: "mvcc: required revision has been compacted", CompactRev: 5})
		}, "canceled by the datastore"},
		{"watch ends early", func(h *History) {
			h.Watches[1].Responses = h.Watches[1].Responses[:len(h.Watches[1].Responses)-1]
		}, "watch b ended at revision 10"},
		{"watchers disagree", func(h *History) {
			h.Watches[1].Responses[eventResponse(h, 1, 5)].Events[0].KV.Lease = 7
		}, "differ at revision 5"},
		{"wrong prev_kv", func(h *History) {
			inAllWatches(h, 4, func(e *WatchEvent) { p := *e.PrevKV; p.Version = 5; e.PrevKV = &p })
		}, "prev_kv"},
		{"version not reset after re-create", func(h *History) {
			inAllWatches(h, 8, func(e *WatchEvent) { e.KV.Version = 3 })
		}, "put event"},
		{"event nobody wrote", func(h *History) {
			inAllWatches(h, 5, func(e *WatchEvent) { e.KV.Value = 999 })
		}, "not caused by any write"},
		{"acknowledged write answered with another revision", func(h *History) {
			h.Ops[opAt(h, OpCreate, 3, true)].Resp.Rev = 6
		}, "is not in the watch history at revision 6"},
		{"write answered as conflict although applied", func(h *History) {
			i := opAt(h, OpUpdate, 0, true)
			h.Ops[i].Resp = Response{Rev: 3, KVs: []KV{kv(0, 1, 2, 2, 1)}, Count: 1}
		}, "not caused by any write"},
		{"conflict although the compare held", func(h *History) {
			h.Ops[opAt(h, OpDelete, 1, false)].Req.ExpectedRev = 3
		}, "compare failed"},
		{"else branch returns a stale object", func(h *History) {
			h.Ops[opAt(h, OpUpdate, 0, false)].Resp.KVs[0] = kv(0, 1, 2, 2, 1)
		}, "(state at revision 4)"},
		{"page at a revision shows a later write", func(h *History) {
			for i, op := range h.Ops {
				if op.Req.Kind == OpList && op.Req.Rev != 0 {
					h.Ops[i].Resp = Response{Rev: 5, KVs: []KV{kv(1, 2, 3, 3, 1)}, Count: 2, More: true}
				}
			}
		}, "(state at revision 4)"},
		{"read at a revision the history never reached", func(h *History) {
			h.Ops[opAt(h, OpGet, 0, false)].Resp.Rev = 20
		}, "outside the history"},
		{"final read disagrees with the watch", func(h *History) {
			h.Final.Resp.KVs = h.Final.Resp.KVs[1:]
		}, "list from k00 limit=0 rev=0 -> rev=11 count=3"},
		{"final revision beyond the watch", func(h *History) {
			h.Final.Resp.Rev++
		}, "final read is at revision 12"},
		{"old revision unreadable after the restart", func(h *History) {
			h.Verify[2].Resp = Response{Err: "mvcc: required revision has been compacted"}
		}, "list from k00 limit=0 rev=3 -> error: mvcc: required revision has been compacted: the datastore must answer"},
		{"history lost at an old revision", func(h *History) {
			h.Verify[3].Resp.KVs = nil
		}, "rev=4 -> rev=11 count=2 more=false []: want"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := scenario()
			c.mutate(&h)
			err := Validate(h)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error does not mention %q:\n%v", c.want, err)
			}
		})
	}
}
