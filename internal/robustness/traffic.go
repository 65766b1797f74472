package robustness

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TrafficConfig shapes the workload.
type TrafficConfig struct {
	// MaxThink is the longest random pause between a client's operations. It bounds the number of
	// operations, which porcupine's search is sensitive to.
	MaxThink time.Duration
	// OpTimeout bounds one request; it should outlast a restart so requests sent while the
	// datastore is down mostly complete against its successor instead of failing.
	OpTimeout time.Duration
	// PageLimit is the list page size.
	PageLimit int64
}

// Traffic runs apiserver-shaped clients and records every request they make.
type Traffic struct {
	cfg    TrafficConfig
	clock  *Clock
	faults *Faults
	nextID atomic.Int64
}

// NewTraffic prepares a workload whose clients pause after errors until faults says the
// datastore is up again.
func NewTraffic(cfg TrafficConfig, clock *Clock, faults *Faults) *Traffic {
	return &Traffic{cfg: cfg, clock: clock, faults: faults}
}

// Run drives one client per etcd client until ctx ends and returns all recorded operations.
func (t *Traffic) Run(ctx context.Context, clients []*clientv3.Client, seed uint64) []Operation {
	var wg sync.WaitGroup
	recorded := make([][]Operation, len(clients))
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tc := &trafficClient{t: t, id: i, kv: c, rnd: rand.New(rand.NewPCG(seed, uint64(i)))}
			tc.run(ctx)
			recorded[i] = tc.ops
		}()
	}
	wg.Wait()
	var all []Operation
	for _, ops := range recorded {
		all = append(all, ops...)
	}
	return all
}

type trafficClient struct {
	t   *Traffic
	id  int
	kv  clientv3.KV
	rnd *rand.Rand
	ops []Operation
	// seen is the ModRevision last observed per key (0: believed absent), standing in for the
	// apiserver's possibly stale copy of an object; stale entries are what cause conflicts.
	seen [numKeys]int64
}

func (c *trafficClient) run(ctx context.Context) {
	for ctx.Err() == nil {
		k := c.rnd.IntN(numKeys)
		switch p := c.rnd.IntN(100); {
		case p < 15:
			c.get(ctx, k)
		case p < 30:
			c.list(ctx)
		case p < 50:
			c.create(ctx, k)
		case p < 80:
			c.update(ctx, k)
		default:
			c.delete(ctx, k)
		}
		if c.t.cfg.MaxThink > 0 {
			select {
			case <-time.After(time.Duration(c.rnd.Int64N(int64(c.t.cfg.MaxThink)))):
			case <-ctx.Done():
			}
		}
	}
}

func (c *trafficClient) get(ctx context.Context, k int) (Response, bool) {
	resp, ok := c.do(ctx, Request{Kind: OpGet, Key: k})
	if ok {
		c.observe(k, resp.KVs)
	}
	return resp, ok
}

// list pages through the prefix like the apiserver: the first page at the latest revision, the
// following ones at the first page's revision, each continuing after the last key returned.
func (c *trafficClient) list(ctx context.Context) {
	req := Request{Kind: OpList, Limit: c.t.cfg.PageLimit}
	for page := 0; page <= numKeys; page++ {
		resp, ok := c.do(ctx, req)
		if !ok || !resp.More || len(resp.KVs) == 0 {
			return
		}
		if req.Rev == 0 {
			req.Rev = resp.Rev
		}
		req.Key = resp.KVs[len(resp.KVs)-1].Key + 1
		if req.Key <= 0 {
			return // a foreign key; Validate reports it
		}
	}
}

func (c *trafficClient) create(ctx context.Context, k int) {
	resp, ok := c.do(ctx, Request{Kind: OpCreate, Key: k, Value: c.t.nextID.Add(1)})
	if ok && resp.Succeeded {
		c.seen[k] = resp.Rev
	}
}

// update is the apiserver's GuaranteedUpdate: try with the cached revision, and on conflict
// retry once with the object the Else branch returned.
func (c *trafficClient) update(ctx context.Context, k int) {
	c.conditional(ctx, k, OpUpdate)
}

// delete is the apiserver's conditional delete, retried on conflict like update.
func (c *trafficClient) delete(ctx context.Context, k int) {
	c.conditional(ctx, k, OpDelete)
}

func (c *trafficClient) conditional(ctx context.Context, k int, kind OpKind) {
	if c.seen[k] == 0 {
		if _, ok := c.get(ctx, k); !ok || c.seen[k] == 0 {
			return
		}
	}
	for attempt := 0; attempt < 2; attempt++ {
		req := Request{Kind: kind, Key: k, ExpectedRev: c.seen[k]}
		if kind == OpUpdate {
			req.Value = c.t.nextID.Add(1)
		}
		resp, ok := c.do(ctx, req)
		if !ok {
			return
		}
		if resp.Succeeded {
			if kind == OpUpdate {
				c.seen[k] = resp.Rev
			} else {
				c.seen[k] = 0
			}
			return
		}
		c.observe(k, resp.KVs)
		if c.seen[k] == 0 {
			return
		}
	}
}

func (c *trafficClient) observe(k int, kvs []KV) {
	c.seen[k] = 0
	for _, kv := range kvs {
		if kv.Key == k {
			c.seen[k] = kv.ModRev
		}
	}
}

// do sends req, records it and reports whether it succeeded. After a failure it waits until
// the datastore is up again, so each kill leaves at most one write of unknown outcome per client.
func (c *trafficClient) do(ctx context.Context, req Request) (Response, bool) {
	// Requests are not tied to ctx: stopping the workload must not turn in-flight writes into
	// writes of unknown outcome.
	rctx, cancel := context.WithTimeout(context.Background(), c.t.cfg.OpTimeout)
	defer cancel()
	op := Operation{Client: c.id, Req: req, Call: c.t.clock.Now()}
	resp, err := execute(rctx, c.kv, req)
	op.Return = c.t.clock.Now()
	if err != nil {
		resp = Response{Err: err.Error()}
	}
	op.Resp = resp
	c.ops = append(c.ops, op)
	if err != nil {
		_ = c.t.faults.WaitUp(ctx)
		return resp, false
	}
	return resp, true
}

// execute sends req in the exact shape the apiserver's etcd3 store uses.
func execute(ctx context.Context, kv clientv3.KV, req Request) (Response, error) {
	key := keyName(req.Key)
	switch req.Kind {
	case OpCreate, OpUpdate, OpDelete:
		txn := kv.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", req.ExpectedRev))
		switch req.Kind {
		case OpCreate:
			txn = txn.Then(clientv3.OpPut(key, valueString(req.Value)))
		case OpUpdate:
			txn = txn.Then(clientv3.OpPut(key, valueString(req.Value))).Else(clientv3.OpGet(key))
		default:
			txn = txn.Then(clientv3.OpDelete(key)).Else(clientv3.OpGet(key))
		}
		tr, err := txn.Commit()
		if err != nil {
			return Response{}, err
		}
		resp := Response{Rev: tr.Header.Revision, Succeeded: tr.Succeeded}
		for _, r := range tr.Responses {
			if d := r.GetResponseDeleteRange(); d != nil {
				resp.Deleted = d.Deleted
			}
			if g := r.GetResponseRange(); g != nil {
				resp.KVs, resp.Count, resp.More = toKVs(g.Kvs), g.Count, g.More
			}
		}
		return resp, nil
	case OpGet:
		gr, err := kv.Get(ctx, key, clientv3.WithLimit(1))
		if err != nil {
			return Response{}, err
		}
		return Response{Rev: gr.Header.Revision, KVs: toKVs(gr.Kvs), Count: gr.Count, More: gr.More}, nil
	case OpList:
		gr, err := kv.Get(ctx, rangeStart(req.Key), clientv3.WithRange(prefixEnd), clientv3.WithLimit(req.Limit), clientv3.WithRev(req.Rev))
		if err != nil {
			return Response{}, err
		}
		return Response{Rev: gr.Header.Revision, KVs: toKVs(gr.Kvs), Count: gr.Count, More: gr.More}, nil
	}
	panic("unknown op kind " + req.Kind.String())
}
