package kvload

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// timedOp performs one logical operation and returns how many requests it took (more than
// one when a compare-and-swap had to be retried).
type timedOp func(ctx context.Context, worker, seq int) (requests int, err error)

type timedResult struct {
	ops      int
	requests int
	window   time.Duration
	lat      []time.Duration
}

func (r timedResult) perSecond() float64 { return float64(r.ops) / r.window.Seconds() }

// runFixed runs warmup+n operations of op on `workers` goroutines and measures the last n: the
// same amount of work for every target, so that what a phase leaves behind (keys, history,
// memory high-water mark) does not depend on how fast the target was. Throughput is n over the
// time from the first measured start to the last completion.
func runFixed(ctx context.Context, workers, warmup, n int, op timedOp) (timedResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	type partial struct {
		ops, requests int
		lat           []time.Duration
		first, last   time.Time
	}
	parts := make([]partial, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			p := &parts[w]
			for ctx.Err() == nil {
				seq := int(next.Add(1) - 1)
				if seq >= warmup+n {
					return
				}
				start := time.Now()
				reqs, err := op(ctx, w, seq)
				if err != nil {
					cancel(fmt.Errorf("client %d: %w", w, err))
					return
				}
				if seq < warmup {
					continue
				}
				end := time.Now()
				if p.first.IsZero() || start.Before(p.first) {
					p.first = start
				}
				p.last = end
				p.ops++
				p.requests += reqs
				p.lat = append(p.lat, end.Sub(start))
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return timedResult{}, err
	}
	var res timedResult
	var first, last time.Time
	for _, p := range parts {
		if p.ops == 0 {
			continue
		}
		res.ops += p.ops
		res.requests += p.requests
		res.lat = append(res.lat, p.lat...)
		if first.IsZero() || p.first.Before(first) {
			first = p.first
		}
		if p.last.After(last) {
			last = p.last
		}
	}
	res.window = last.Sub(first)
	if res.ops == 0 || res.window <= 0 {
		return res, fmt.Errorf("no operation measured")
	}
	return res, nil
}

// runCount performs op for every i in [0, n) on `workers` goroutines, for fixed-size work
// such as seeding keys, where the amount of data matters more than the time taken.
func runCount(ctx context.Context, workers, n int, op func(ctx context.Context, worker, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := op(ctx, w, i); err != nil {
					cancel(fmt.Errorf("item %d: %w", i, err))
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}
