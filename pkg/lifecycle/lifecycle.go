// Package lifecycle is the one start-up frame of a ketch node, server or agent: it checks the
// host, takes the data dir and run dir, checks the ports, opens the console, lets the role start
// its components in stages, waits for the node to register and turn Ready, watches every
// component until one fails or the process is told to stop, and then stops the stages in reverse
// order. A role (pkg/server, pkg/agent) supplies only what differs: its ports and the start-up of
// its components.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/component"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/console"
	"github.com/ketch-k8s/ketch/pkg/hostcheck"
	"github.com/ketch-k8s/ketch/pkg/lockfile"
)

// Timings of the frame; variables so that tests can shorten them.
var (
	// stopTimeout bounds the staged stop (after a start-up step that was under way has had its
	// startupStopGrace): a wedged component must not keep the process.
	stopTimeout = 20 * time.Second
	// startupStopGrace is how long a start-up step that is told to stop gets to return before the
	// frame stops the stages without it.
	startupStopGrace = 5 * time.Second
	// stillWaitingAfter is how long a start-up step may take before the console says what the
	// node still waits for (and then again every as long).
	stillWaitingAfter = 30 * time.Second
	// stageGrace is what every stage gets to stop even once the deadline has passed: one wedged
	// component must not keep the datastore from closing its file cleanly.
	stageGrace = time.Second
	// signalRace is how long a component that stopped gets for the stop signal to arrive: the
	// kubelet handles SIGTERM itself and may stop a moment before the process's context ends.
	signalRace = time.Second
)

// Role is what a kind of node brings to the frame.
type Role struct {
	// Name is the command, "server" or "agent", for messages.
	Name string
	// Ports are the TCP addresses the role's components will listen on; they are checked before
	// anything starts.
	Ports []hostcheck.Port
	// Start brings the role's components up through n, in dependency order, and returns once they
	// run. It names what it waits for with n.Waiting, starts components on n's stages, and calls
	// n.WatchNode before the node's kubelet starts.
	Start func(ctx context.Context, n *Node) error
}

// Run runs a node until ctx ends (a clean stop, nil) or a component fails (an error naming it).
// Everything that can be checked (the host, the dirs, the ports) is checked before anything
// starts.
func Run(ctx context.Context, cfg *config.Node, role Role) (err error) {
	start := time.Now()
	tuneGC()
	// Before anything runs: the kubelet would otherwise tell systemd the node is up (notify.go).
	notify := takeNotifySocket()
	host, err := hostcheck.Check(cfg.DataDir)
	if err != nil {
		return err
	}
	paths := cfg.Paths()
	dataLock, err := lockDir(paths.DataDirLock(), "data dir", cfg.DataDir, "--data-dir")
	if err != nil {
		return err
	}
	defer dataLock.Release()
	// One node per run dir: another node's containerd, datastore and flannel would find their
	// sockets and files replaced by this one's.
	runLock, err := lockDir(paths.RunDirLock(), "run dir", cfg.RunDir, "--run-dir")
	if err != nil {
		return err
	}
	defer runLock.Release()
	if err := hostcheck.CheckPortsFree(role.Ports...); err != nil {
		return err
	}
	con, err := console.Open(paths.LogFile(), cfg.Debug, start)
	if err != nil {
		return err
	}
	// From here on stderr is the log file: a failure goes there and to the user's terminal.
	defer con.Report("ketch "+role.Name+" failed", &err)
	for _, msg := range host.Messages {
		con.Printf("%s", msg)
	}
	return newNode(ctx, host, con, notify).run(role.Start)
}

// lockDir takes a dir's lock file, with an error that says what to do when another ketch holds it.
func lockDir(path, what, dir, flag string) (*lockfile.Lock, error) {
	l, err := lockfile.TryAcquire(path)
	var held *lockfile.HeldError
	if errors.As(err, &held) {
		return nil, fmt.Errorf("%s %s is in use by another running ketch (pid %s); stop it or pass another %s", what, dir, held.PID, flag)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, dir, err)
	}
	return l, nil
}

// Node is a node being started and run: the role's handle on the frame.
type Node struct {
	base context.Context // the process's context: it ends when the user stops the node
	host *hostcheck.Host
	con  *console.Console
	// notify tells the service manager, if one listens, what start-up does and when the node
	// is Ready (systemd's Type=notify).
	notify notifier
	fail   context.CancelCauseFunc
	// watchers are the frame's own goroutines, which run returns only after.
	watchers sync.WaitGroup

	mu           sync.Mutex
	stages       []*Stage
	step         string
	stepWhy      string // what the step's wait last saw, for the still-waiting line
	stepSince    time.Time
	started      bool
	stopped      bool // stages made from now on stop at once
	client       kubernetes.Interface
	nodeName     string
	heartbeat    time.Time
	startedAt    time.Time
	onRegistered []func(context.Context) error
	onReady      []func()
}

func newNode(ctx context.Context, host *hostcheck.Host, con *console.Console, notify notifier) *Node {
	return &Node{base: ctx, host: host, con: con, notify: notify, startedAt: time.Now(), stepSince: time.Now(), step: "the start-up to begin"}
}

// Host is what the host check found.
func (n *Node) Host() *hostcheck.Host { return n.host }

// Printf prints a line to the user's terminal.
func (n *Node) Printf(format string, a ...any) { n.con.Printf(format, a...) }

// Phase prints a start-up phase that is done, with the time since start.
func (n *Node) Phase(format string, a ...any) {
	n.con.Phase(format, a...)
	n.notify.send(status(fmt.Sprintf(format, a...)))
}

// Waiting names what start-up waits for now: the console says it when the step takes long or
// when the node is stopped before it is done.
func (n *Node) Waiting(what string) {
	n.mu.Lock()
	n.step, n.stepWhy, n.stepSince = what, "", time.Now()
	n.mu.Unlock()
	n.notify.send(status("waiting for " + what))
}

// currentStep is what start-up waits for, what that wait last saw, and for how long.
func (n *Node) currentStep() (step, why string, since time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.step, n.stepWhy, time.Since(n.stepSince)
}

// waitingBecause records what the current step's wait last saw: the still-waiting line says it.
func (n *Node) waitingBecause(why string) {
	n.mu.Lock()
	n.stepWhy = why
	n.mu.Unlock()
}

// WatchNode is the client the frame watches the node's Node object with, and the node's name.
// Call it before the kubelet starts: the Node's last heartbeat now tells a Ready condition left
// by the previous run from this run's.
func (n *Node) WatchNode(ctx context.Context, client kubernetes.Interface, name string) {
	hb := LastHeartbeat(ctx, client, name)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.client, n.nodeName, n.heartbeat = client, name, hb
}

// OnRegistered runs fn once the node's Node object exists, before the node counts as Ready.
func (n *Node) OnRegistered(fn func(ctx context.Context) error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onRegistered = append(n.onRegistered, fn)
}

// OnReady runs fn once the node is Ready.
func (n *Node) OnReady(fn func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onReady = append(n.onReady, fn)
}

// Stage is components that stop together. Stages stop in the reverse order of their creation,
// each once the later ones are down (the node, then the controllers, then kube-apiserver, then
// the datastore), so that no component spends its shutdown retrying calls to one that is
// already gone. A stage's context is not the process's: it ends only when the stage stops.
type Stage struct {
	name       string
	ctx        context.Context
	cancel     context.CancelFunc
	components []*component.Component

	mu     sync.Mutex // onStop: a runtime start-up in the background adds to it (agent.StartRuntime)
	onStop []func()
}

// Stage adds a stage after the existing ones.
func (n *Node) Stage(name string) *Stage {
	ctx, cancel := context.WithCancel(context.WithoutCancel(n.base))
	s := &Stage{name: name, ctx: ctx, cancel: cancel}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		// A start-up step that outlived its grace period: what it starts now stops at once.
		cancel()
	}
	n.stages = append(n.stages, s)
	return s
}

// Context ends when the stage stops; the stage's components run with it.
func (s *Stage) Context() context.Context { return s.ctx }

// Go starts a component on the stage: run must keep running until ctx ends.
func (n *Node) Go(s *Stage, name string, run func(ctx context.Context) error) {
	n.Watch(s, component.Start(name, func() error { return run(s.ctx) }))
}

// Watch adds a running component to the stage. A component that stops before its stage does
// has failed the node: the node stops, with the component's error.
func (n *Node) Watch(s *Stage, c *component.Component) {
	n.mu.Lock()
	s.components = append(s.components, c)
	n.mu.Unlock()
	n.watchers.Go(func() {
		select {
		case <-s.ctx.Done():
			return
		case <-c.Done():
		}
		select {
		case <-s.ctx.Done():
		case <-n.base.Done():
		case <-time.After(signalRace):
			n.fail(c.Stopped()) // the first failure is the cause the node stops with
		}
	})
}

// OnStop runs fn when the stage stops, after its components (for what is not a component, such
// as containerd's client).
func (s *Stage) OnStop(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onStop = append(s.onStop, fn)
}

// run runs start, waits for the node, and watches the components until the node must stop.
func (n *Node) run(start func(context.Context, *Node) error) error {
	runCtx, fail := context.WithCancelCause(n.base)
	defer fail(nil)
	n.fail = fail
	startErr := make(chan error, 1)
	go func() { startErr <- n.startup(runCtx, start) }()
	n.watchers.Go(func() { n.reportSlowSteps(runCtx) })

	var err error
	select {
	case err = <-startErr:
		if err == nil {
			n.mu.Lock()
			n.started = true
			n.mu.Unlock()
			<-runCtx.Done()
		}
	case <-runCtx.Done():
		// Told to stop, or a component failed, while starting: the step under way sees its
		// context end; give it a moment to unwind, then stop without it.
		select {
		case err = <-startErr:
		case <-time.After(startupStopGrace):
			step, _, _ := n.currentStep()
			n.con.Printf("start-up did not stop within %s while waiting for %s; stopping without it", startupStopGrace, step)
		}
	}
	deadline := time.Now().Add(stopTimeout)

	n.mu.Lock()
	started := n.started
	n.mu.Unlock()
	switch {
	case n.base.Err() != nil:
		err = nil // the user's stop
		n.notify.send("STOPPING=1", status("stopping"))
		if started {
			n.con.Printf("stopping")
		} else {
			step, _, _ := n.currentStep()
			n.con.Printf("stopping before the node started (it was waiting for %s)", step)
		}
	case runCtx.Err() != nil:
		err = context.Cause(runCtx) // a component failed
	}
	n.stop(deadline)
	fail(nil)
	n.watchers.Wait()
	return err
}

// startup runs the role's start and then waits for the node: registered, then Ready.
func (n *Node) startup(ctx context.Context, start func(context.Context, *Node) error) error {
	if err := start(ctx, n); err != nil {
		return err
	}
	n.mu.Lock()
	client, name, heartbeat := n.client, n.nodeName, n.heartbeat
	onRegistered, onReady := n.onRegistered, n.onReady
	n.mu.Unlock()
	if client == nil {
		return errors.New("the role started no node (no WatchNode)")
	}
	n.Waiting("node " + name + " to register")
	if err := waitNode(ctx, client, name, Registered, n.waitingBecause); err != nil {
		return err
	}
	for _, fn := range onRegistered {
		if err := fn(ctx); err != nil {
			return err
		}
	}
	n.Phase("node registered")
	n.Waiting("node " + name + " to be Ready")
	if err := waitNode(ctx, client, name, ReadySince(n.startedAt, heartbeat), n.waitingBecause); err != nil {
		return err
	}
	n.con.Phase("node Ready")
	n.notify.send("READY=1", status("node "+name+" Ready"))
	for _, fn := range onReady {
		fn()
	}
	return nil
}

// reportSlowSteps says what start-up still waits for, every stillWaitingAfter, until it is done.
func (n *Node) reportSlowSteps(ctx context.Context) {
	t := time.NewTicker(stillWaitingAfter / 3)
	defer t.Stop()
	var said string
	var saidAt time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.mu.Lock()
		started := n.started
		n.mu.Unlock()
		if started {
			return
		}
		step, why, since := n.currentStep()
		if since >= stillWaitingAfter && (step != said || since-saidAt >= stillWaitingAfter) {
			if why != "" {
				// The kubelet's own words: the user sees which part holds the node back.
				why = ": " + why
			}
			n.con.Printf("still waiting for %s (%s)%s", step, since.Round(time.Second), why)
			said, saidAt = step, since
		}
	}
}

// stop stops the stages, last first, each within what is left until deadline (or stageGrace,
// whichever is longer).
func (n *Node) stop(deadline time.Time) {
	n.mu.Lock()
	stages := append([]*Stage(nil), n.stages...)
	n.stopped = true
	n.mu.Unlock()
	for i := len(stages) - 1; i >= 0; i-- {
		s := stages[i]
		deadline := deadline
		if grace := time.Now().Add(stageGrace); grace.After(deadline) {
			deadline = grace
		}
		s.cancel()
		for _, c := range s.components {
			select {
			case <-c.Done():
				if err := c.Err(); err != nil && !errors.Is(err, context.Canceled) {
					klog.InfoS("Component stopped", "component", c.Name, "err", err)
				}
			case <-time.After(time.Until(deadline)):
				klog.InfoS("Component did not stop in time", "component", c.Name, "stage", s.name)
			}
		}
		s.mu.Lock()
		onStop := s.onStop
		s.mu.Unlock()
		for _, fn := range onStop {
			done := make(chan struct{})
			go func() { defer close(done); fn() }()
			select {
			case <-done:
			case <-time.After(time.Until(deadline)):
				klog.InfoS("Stage did not finish stopping in time", "stage", s.name)
			}
		}
	}
}
