// Package robustness checks that the datastore keeps etcd's semantics (linearizable KV with
// global revisions, complete ordered watches, durable acknowledged writes) while it is killed
// and restarted under apiserver-shaped load.
package robustness

import (
	"fmt"
	"strings"

	"github.com/anishathalye/porcupine"
)

// OpKind is the shape of a request, mirroring what the apiserver's etcd3 store sends.
type OpKind uint8

const (
	// OpCreate is Txn If(ModRevision(k)==0) Then Put(k, v).
	OpCreate OpKind = iota
	// OpUpdate is Txn If(ModRevision(k)==rev) Then Put(k, v) Else Get(k).
	OpUpdate
	// OpDelete is Txn If(ModRevision(k)==rev) Then Delete(k) Else Get(k).
	OpDelete
	// OpGet is Range(k) with limit 1.
	OpGet
	// OpList is one page of Range over the prefix, starting at a key index, with a limit and
	// optionally at a revision.
	OpList
)

func (k OpKind) String() string {
	switch k {
	case OpCreate:
		return "create"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	case OpGet:
		return "get"
	case OpList:
		return "list"
	}
	return fmt.Sprintf("op(%d)", uint8(k))
}

func (k OpKind) isWrite() bool { return k == OpCreate || k == OpUpdate || k == OpDelete }

// Request is one RPC. Keys are indices into the workload's key set and values are write ids, so
// histories stay small and every value identifies the single write that produced it.
type Request struct {
	Kind        OpKind
	Key         int   // the key; for OpList the first key index of the page (the continue key)
	Value       int64 // write id put by OpCreate/OpUpdate
	ExpectedRev int64 // ModRevision compared by OpUpdate/OpDelete
	Limit       int64 // OpList page size; 0 means no limit
	Rev         int64 // OpList read revision; 0 means latest
}

// KV is a key-value as etcd returns it, with the key as an index and the value as a write id.
// Key is -1 for a key outside the workload's key set and Value is -1 for a value no client wrote,
// so that such data never matches the model.
type KV struct {
	Key       int
	Value     int64
	ModRev    int64
	CreateRev int64
	Version   int64
	Lease     int64
}

// Response is what the datastore answered. Err is set when the RPC failed; a failed write may
// or may not have been applied, so its other fields mean nothing.
type Response struct {
	Err       string `json:",omitempty"`
	Rev       int64  // header revision
	Succeeded bool   // txn compare result
	Deleted   int64  // Then-branch DeleteRange count
	KVs       []KV   // Range result, including the Else-branch Get
	Count     int64
	More      bool
}

func (r Response) equal(o Response) bool {
	if r.Err != o.Err || r.Rev != o.Rev || r.Succeeded != o.Succeeded || r.Deleted != o.Deleted ||
		r.Count != o.Count || r.More != o.More || len(r.KVs) != len(o.KVs) {
		return false
	}
	for i := range r.KVs {
		if r.KVs[i] != o.KVs[i] {
			return false
		}
	}
	return true
}

// keyState is one key in the model. Value 0 means absent (write ids start at 1).
type keyState struct {
	Value, ModRev, CreateRev, Version int64
}

// State is the whole keyspace plus the global revision. It is a comparable value without
// pointers so porcupine can copy, compare and hash it cheaply; the revision is part of it
// because every response's header revision is checked.
type State struct {
	Rev  int64
	Keys [numKeys]keyState
}

func (s State) kv(k int) (KV, bool) {
	ks := s.Keys[k]
	if ks.Value == 0 {
		return KV{}, false
	}
	return KV{Key: k, Value: ks.Value, ModRev: ks.ModRev, CreateRev: ks.CreateRev, Version: ks.Version}, true
}

// rangeResp is etcd's Range over key indices [start, end): Count is every key in the range,
// regardless of limit, and More says the limit cut the result short.
func (s State) rangeResp(start, end int, limit int64) Response {
	resp := Response{Rev: s.Rev}
	for k := max(start, 0); k < end && k < numKeys; k++ {
		kv, ok := s.kv(k)
		if !ok {
			continue
		}
		resp.Count++
		if limit == 0 || int64(len(resp.KVs)) < limit {
			resp.KVs = append(resp.KVs, kv)
		}
	}
	resp.More = int64(len(resp.KVs)) < resp.Count
	return resp
}

func (s State) put(k int, value int64) State {
	s.Rev++
	ks := s.Keys[k]
	if ks.Value == 0 {
		ks = keyState{CreateRev: s.Rev}
	}
	ks.Value, ks.ModRev = value, s.Rev
	ks.Version++
	s.Keys[k] = ks
	return s
}

// apply executes req the way etcd does and returns the new state and the exact response etcd
// would give. An OpList at a past revision is answered from the current state; callers check
// those separately because the model keeps no history.
func apply(s State, req Request) (State, Response) {
	switch req.Kind {
	case OpCreate, OpUpdate, OpDelete:
		// A missing key compares as ModRevision 0, as in etcd's applyCompare.
		if s.Keys[req.Key].ModRev != req.ExpectedRev {
			resp := Response{Rev: s.Rev}
			if req.Kind != OpCreate {
				resp = s.rangeResp(req.Key, req.Key+1, 0)
			}
			return s, resp
		}
		if req.Kind == OpDelete {
			if s.Keys[req.Key].Value == 0 {
				// A txn that changes nothing does not bump the revision.
				return s, Response{Rev: s.Rev, Succeeded: true}
			}
			s.Keys[req.Key] = keyState{}
			s.Rev++
			return s, Response{Rev: s.Rev, Succeeded: true, Deleted: 1}
		}
		s = s.put(req.Key, req.Value)
		return s, Response{Rev: s.Rev, Succeeded: true}
	case OpGet:
		return s, s.rangeResp(req.Key, req.Key+1, 1)
	case OpList:
		return s, s.rangeResp(req.Key, numKeys, req.Limit)
	}
	panic(fmt.Sprintf("unknown op kind %v", req.Kind))
}

// step returns every state the system may be in after req answered resp in state s; none means
// the answer is impossible there.
func step(s State, req Request, resp Response) []State {
	if req.Kind == OpList && req.Rev != 0 {
		// The model holds only the current state, so a page at a past revision can only be
		// placed by its header revision; Validate checks its contents against the watch replay.
		if resp.Err == "" && resp.Rev == s.Rev && req.Rev <= s.Rev {
			return []State{s}
		}
		return nil
	}
	next, want := apply(s, req)
	if resp.Err != "" {
		// The outcome is unknown: the write may have been applied here or never.
		if next == s {
			return []State{s}
		}
		return []State{s, next}
	}
	if !want.equal(resp) {
		return nil
	}
	return []State{next}
}

func (s State) hash() uint64 {
	h := uint64(s.Rev) * 0x9E3779B97F4A7C15
	for i, ks := range s.Keys {
		h ^= (uint64(ks.Value)*31 + uint64(ks.ModRev)*131 + uint64(ks.Version)*7 + uint64(ks.CreateRev) + uint64(i)) * 0xBF58476D1CE4E5B9
		h = h<<7 | h>>57
	}
	return h
}

func (s State) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rev=%d {", s.Rev)
	sep := ""
	for k := range s.Keys {
		if kv, ok := s.kv(k); ok {
			fmt.Fprintf(&b, "%s%v", sep, kv)
			sep = " "
		}
	}
	b.WriteString("}")
	return b.String()
}

func (kv KV) String() string {
	return fmt.Sprintf("k%02d=w%d(mod=%d,create=%d,ver=%d)", kv.Key, kv.Value, kv.ModRev, kv.CreateRev, kv.Version)
}

func (r Request) String() string {
	switch r.Kind {
	case OpCreate:
		return fmt.Sprintf("create k%02d=w%d", r.Key, r.Value)
	case OpUpdate:
		return fmt.Sprintf("update k%02d=w%d if mod=%d", r.Key, r.Value, r.ExpectedRev)
	case OpDelete:
		return fmt.Sprintf("delete k%02d if mod=%d", r.Key, r.ExpectedRev)
	case OpGet:
		return fmt.Sprintf("get k%02d", r.Key)
	case OpList:
		return fmt.Sprintf("list from k%02d limit=%d rev=%d", r.Key, r.Limit, r.Rev)
	}
	return r.Kind.String()
}

func (r Response) String() string {
	if r.Err != "" {
		return "error: " + r.Err
	}
	s := fmt.Sprintf("rev=%d", r.Rev)
	if r.Succeeded {
		s += " ok"
	}
	if r.Deleted != 0 {
		s += fmt.Sprintf(" deleted=%d", r.Deleted)
	}
	if r.KVs != nil || r.Count != 0 {
		s += fmt.Sprintf(" count=%d more=%v %v", r.Count, r.More, r.KVs)
	}
	return s
}

// Model is the porcupine specification of the datastore starting from an empty key set at
// initRev. It is nondeterministic only for failed writes, which may or may not have happened.
func Model(initRev int64) porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Init: func() []interface{} { return []interface{}{State{Rev: initRev}} },
		Step: func(state, input, output interface{}) []interface{} {
			next := step(state.(State), input.(Request), output.(Response))
			out := make([]interface{}, len(next))
			for i, s := range next {
				out[i] = s
			}
			return out
		},
		Equal: func(a, b interface{}) bool { return a.(State) == b.(State) },
		Hash:  func(s interface{}) uint64 { return s.(State).hash() },
		DescribeOperation: func(input, output interface{}) string {
			return fmt.Sprintf("%v -> %v", input.(Request), output.(Response))
		},
		DescribeState: func(s interface{}) string { return s.(State).String() },
	}
	return nm.ToModel()
}
