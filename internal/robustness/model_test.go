package robustness

import (
	"testing"
	"time"
)

// sequential turns (request, response) pairs into a history where each operation returns
// before the next is called, with the final read taken from the last pair.
func sequential(pairs ...any) History {
	h := History{InitRev: 1}
	for i := 0; i+1 < len(pairs); i += 2 {
		at := int64(i) * 10
		h.Ops = append(h.Ops, Operation{Client: i % 3, Req: pairs[i].(Request), Resp: pairs[i+1].(Response), Call: at, Return: at + 5})
	}
	last := h.Ops[len(h.Ops)-1]
	h.Ops = h.Ops[:len(h.Ops)-1]
	h.Final = &last
	return h
}

func kv(key int, value, mod, create, version int64) KV {
	return KV{Key: key, Value: value, ModRev: mod, CreateRev: create, Version: version}
}

// etcdSession is a sequence of requests with the responses etcd gives, written out by hand
// rather than derived from the model, so it pins the model to etcd's behaviour.
func etcdSession() []any {
	k0v3 := kv(0, 3, 3, 2, 2)
	return []any{
		Request{Kind: OpCreate, Key: 0, Value: 1}, Response{Rev: 2, Succeeded: true},
		Request{Kind: OpCreate, Key: 0, Value: 2}, Response{Rev: 2},
		Request{Kind: OpUpdate, Key: 0, Value: 3, ExpectedRev: 2}, Response{Rev: 3, Succeeded: true},
		Request{Kind: OpUpdate, Key: 0, Value: 4, ExpectedRev: 2}, Response{Rev: 3, KVs: []KV{k0v3}, Count: 1},
		Request{Kind: OpGet, Key: 0}, Response{Rev: 3, KVs: []KV{k0v3}, Count: 1},
		Request{Kind: OpCreate, Key: 1, Value: 5}, Response{Rev: 4, Succeeded: true},
		Request{Kind: OpList, Limit: 1}, Response{Rev: 4, KVs: []KV{k0v3}, Count: 2, More: true},
		Request{Kind: OpList, Key: 1, Limit: 1, Rev: 4}, Response{Rev: 4, KVs: []KV{kv(1, 5, 4, 4, 1)}, Count: 1},
		Request{Kind: OpDelete, Key: 0, ExpectedRev: 3}, Response{Rev: 5, Succeeded: true, Deleted: 1},
		Request{Kind: OpDelete, Key: 0, ExpectedRev: 3}, Response{Rev: 5},
		Request{Kind: OpCreate, Key: 0, Value: 6}, Response{Rev: 6, Succeeded: true},
		Request{Kind: OpGet, Key: 0}, Response{Rev: 6, KVs: []KV{kv(0, 6, 6, 6, 1)}, Count: 1},
		Request{Kind: OpDelete, Key: 1, ExpectedRev: 2}, Response{Rev: 6, KVs: []KV{kv(1, 5, 4, 4, 1)}, Count: 1},
		Request{Kind: OpGet, Key: 9}, Response{Rev: 6},
		Request{Kind: OpList}, Response{Rev: 6, KVs: []KV{kv(0, 6, 6, 6, 1), kv(1, 5, 4, 4, 1)}, Count: 2},
	}
}

func TestModelAcceptsEtcdSemantics(t *testing.T) {
	if _, err := CheckLinearizable(sequential(etcdSession()...), 10*time.Second, time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestModelRejectsDeviations(t *testing.T) {
	session := etcdSession()
	// Each case replaces the response at index i (a response's position in etcdSession).
	cases := []struct {
		name string
		i    int
		resp Response
	}{
		{"failed compare bumps the revision", 3, Response{Rev: 3}},
		{"write skips a revision", 5, Response{Rev: 4, Succeeded: true}},
		{"else branch returns a stale object", 7, Response{Rev: 3, KVs: []KV{kv(0, 1, 2, 2, 1)}, Count: 1}},
		{"version not bumped by update", 9, Response{Rev: 3, KVs: []KV{kv(0, 3, 3, 2, 1)}, Count: 1}},
		{"count limited by the page size", 13, Response{Rev: 4, KVs: []KV{kv(0, 3, 3, 2, 2)}, Count: 1, More: true}},
		{"more flag missing", 13, Response{Rev: 4, KVs: []KV{kv(0, 3, 3, 2, 2)}, Count: 2}},
		{"page at a revision reports a stale header", 15, Response{Rev: 3, KVs: []KV{kv(1, 5, 4, 4, 1)}, Count: 1}},
		{"delete reports nothing deleted", 17, Response{Rev: 5, Succeeded: true}},
		{"version not reset by delete and create", 23, Response{Rev: 6, KVs: []KV{kv(0, 6, 6, 6, 3)}, Count: 1}},
		{"create revision kept across delete and create", 23, Response{Rev: 6, KVs: []KV{kv(0, 6, 6, 2, 1)}, Count: 1}},
		{"else branch returns a deleted object", 19, Response{Rev: 5, KVs: []KV{kv(0, 3, 3, 2, 2)}, Count: 1}},
		{"read goes back in time after a completed write", 9, Response{Rev: 2, KVs: []KV{kv(0, 1, 2, 2, 1)}, Count: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pairs := append([]any(nil), session...)
			pairs[c.i] = c.resp
			if _, err := CheckLinearizable(sequential(pairs...), 10*time.Second, time.Second); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// unknownWriteHistory has a create that failed with an error, then a read at time readAt that
// either saw it applied or not. A kill at killAt (if non-zero) bounds when it could apply.
func unknownWriteHistory(applied bool, readAt, killAt int64) History {
	read := Response{Rev: 1}
	if applied {
		read = Response{Rev: 2, KVs: []KV{kv(0, 1, 2, 2, 1)}, Count: 1}
	}
	h := History{
		InitRev: 1,
		Ops: []Operation{
			{Client: 0, Req: Request{Kind: OpCreate, Key: 0, Value: 1}, Resp: Response{Err: "connection reset"}, Call: 10, Return: 20},
			{Client: 1, Req: Request{Kind: OpGet, Key: 0}, Resp: Response{Rev: 1}, Call: 30, Return: 40},
		},
		Final: &Operation{Client: 1, Req: Request{Kind: OpGet, Key: 0}, Resp: read, Call: readAt, Return: readAt + 10},
	}
	if killAt != 0 {
		h.Kills = []Kill{{Signaled: killAt - 1, Exited: killAt, Ready: killAt + 1}}
	}
	return h
}

func TestUnknownWriteOutcome(t *testing.T) {
	cases := []struct {
		name    string
		h       History
		wantErr bool
	}{
		{"applied later, no kill", unknownWriteHistory(true, 100, 0), false},
		{"never applied", unknownWriteHistory(false, 100, 0), false},
		{"applied only after the kill that bounds it", unknownWriteHistory(true, 100, 25), true},
		{"applied after the read, before the kill", unknownWriteHistory(true, 100, 200), false},
		{"never applied, with a kill", unknownWriteHistory(false, 100, 25), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := CheckLinearizable(c.h, 10*time.Second, time.Second)
			if (err != nil) != c.wantErr {
				t.Fatalf("got %v, want error: %v", err, c.wantErr)
			}
		})
	}
}
