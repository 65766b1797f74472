// Package pid1 does PID 1's work when ketch is a container's first process (docker run of the
// node image): the kernel gives PID 1 every orphaned process of the namespace to reap, and only
// the signals it handles. ketch cannot do that work in the same process, since reaping every child
// would steal the exit statuses that containerd and os/exec wait for; so PID 1 starts ketch again
// as its only child, reaps whatever dies, forwards the signals a container gets to that child, and
// exits with its exit status, as an init such as tini does.
package pid1

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// IsInit says whether this process is the first of its PID namespace.
func IsInit() bool { return os.Getpid() == 1 }

// forwarded are the signals a container's process is sent (docker stop, docker kill -s, a
// terminal) that the child must see.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// Run starts path with argv and env as the child, reaps every process that ends until the child
// does, and returns the child's exit status (128 plus the signal's number when a signal ended it,
// as a shell reports it). say is told, once, what PID 1 does.
func Run(path string, argv, env []string, say func(format string, a ...any)) int {
	// Ask for SIGCHLD and the forwarded signals before the child exists, so none is missed.
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, append([]os.Signal{syscall.SIGCHLD}, forwarded...)...)
	defer signal.Stop(sigs)

	// The child gets a process group of its own: a terminal's Ctrl-C then reaches PID 1 alone,
	// and the child hears it once, forwarded (ketch takes a second SIGINT as "exit now").
	child, err := os.StartProcess(path, argv, &os.ProcAttr{Env: env, Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys: &syscall.SysProcAttr{Setpgid: true}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ketch: PID 1: starting %s: %v\n", path, err)
		return 1
	}
	say("ketch: running as PID 1: pid %d runs ketch; this process reaps orphaned processes and forwards signals to it", child.Pid)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			// A child that is already gone has nothing to be told.
			_ = child.Signal(sig)
			continue
		}
		if status, done := reap(child.Pid); done {
			if status > 128 {
				// Nothing else would say it: a process killed by a signal (the kernel's OOM
				// killer's SIGKILL, say) prints nothing, and the container just stops.
				say("ketch: PID 1: ketch (pid %d) was killed by signal %d (%v)", child.Pid, status-128, unix.SignalName(syscall.Signal(status-128)))
			}
			return status
		}
	}
	return 1 // not reached: sigs is never closed
}

// reap collects every process that has ended; done says whether the child was one of them, and
// status is then its exit status.
func reap(childPID int) (status int, done bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			// ECHILD (no children left) or none has ended yet.
			return status, done
		}
		if pid != childPID {
			continue
		}
		done = true
		switch {
		case ws.Exited():
			status = ws.ExitStatus()
		case ws.Signaled():
			status = 128 + int(ws.Signal())
		default:
			status = 1
		}
	}
}
