package robustness

import (
	"context"
	"sync"
	"time"
)

// Process is the datastore under test: Kill sends SIGKILL and reaps it, Start restarts it on the
// same data dir and endpoint and returns once it is ready.
type Process interface {
	Kill()
	Start()
}

// epoch is one lifetime of the datastore process. down closes when it is about to be killed, up
// when its successor answers requests.
type epoch struct {
	up, down chan struct{}
}

// Faults kills and restarts the datastore and tells clients and watchers when it is back, so
// they stop hammering a dead endpoint (which would only pile up writes of unknown outcome).
type Faults struct {
	proc  Process
	clock *Clock

	mu    sync.Mutex
	cur   *epoch
	kills []Kill
}

// NewFaults takes over a process that is running and ready.
func NewFaults(proc Process, clock *Clock) *Faults {
	up := make(chan struct{})
	close(up)
	return &Faults{proc: proc, clock: clock, cur: &epoch{up: up, down: make(chan struct{})}}
}

func (f *Faults) current() *epoch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

// WaitUp blocks until the datastore is running, or ctx ends.
func (f *Faults) WaitUp(ctx context.Context) error {
	select {
	case <-f.current().up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// KillAndRestart SIGKILLs the datastore, leaves it dead for downtime and restarts it. It must run
// on the test goroutine because Process.Start fails the test when the restart fails.
func (f *Faults) KillAndRestart(downtime time.Duration) {
	f.mu.Lock()
	old := f.cur
	f.cur = &epoch{up: make(chan struct{}), down: make(chan struct{})}
	next := f.cur
	f.mu.Unlock()
	close(old.down)

	k := Kill{Signaled: f.clock.Now()}
	f.proc.Kill()
	k.Exited = f.clock.Now()
	time.Sleep(downtime)
	f.proc.Start()
	k.Ready = f.clock.Now()
	close(next.up)

	f.mu.Lock()
	f.kills = append(f.kills, k)
	f.mu.Unlock()
}

// Kills returns the kills so far.
func (f *Faults) Kills() []Kill {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Kill(nil), f.kills...)
}
