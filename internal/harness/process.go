// Package harness drives real ketch processes on this machine for the benchmarks
// (tools/ketch-bench) and the end-to-end tests: it starts and stops `ketch server`, `ketch
// datastore` and clusters of scripts/ketch-cluster.sh, waits for them, runs ketch's subcommands
// as a user would, reads what the processes cost (memory, CPU), cleans up after them and checks
// that nothing is left on the host. It reports errors instead of failing a test, so that
// non-test code can use it; internal/testutil wraps it for tests.
package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is a child process whose exit is watched.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid once done is closed
}

// Start starts cmd in its own process group, so that a terminal's Ctrl-C reaches only the
// caller, which then stops the process in order instead of racing it. deathSig is what the
// process gets if the caller dies first, so that it does not linger holding its ports and dirs.
func Start(cmd *exec.Cmd, deathSig syscall.Signal) (*Process, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSig}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID is the process's id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited is whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to exit and returns how it ended, as exec.Cmd.Wait does.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// ExitCode is the process's exit code once it has exited, -1 while it runs or if a signal
// ended it.
func (p *Process) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// killWait bounds the wait for a SIGKILLed process: one in uninterruptible sleep can take a
// while, and one that never exits must not hang the caller.
const killWait = 10 * time.Second

// Stop sends sig and waits up to grace for the process to exit, then kills it. It returns how
// long the process took to exit after sig, and an error if it had to be killed or could not be
// signalled. A process that has already exited is left alone, so Stop may be called again.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) (time.Duration, error) {
	if p.Exited() {
		return 0, nil
	}
	t0 := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return 0, fmt.Errorf("signal %v to pid %d: %w", sig, p.PID(), err)
	}
	select {
	case <-p.done:
		return time.Since(t0), nil
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return 0, fmt.Errorf("pid %d did not exit within %s of %v and was killed", p.PID(), grace, sig)
	case <-time.After(killWait):
		return 0, fmt.Errorf("pid %d did not exit within %s of %v, nor within %s of SIGKILL", p.PID(), grace, sig, killWait)
	}
}
