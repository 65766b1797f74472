// Command pause is the pod sandbox's first process: it holds the pod's namespaces open, reaps
// the orphans that the kernel re-parents to it, and exits cleanly when the kubelet stops the pod.
// It does what the upstream pause.c does, in static Go, so that ketch can build the pause image
// itself and no node ever needs a registry to start a pod.
//
// The Makefile builds it into pkg/images/pause/linux_<GOARCH>/pause, which pkg/images embeds.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is printed by -v, like upstream's; it names the upstream behaviour this mirrors.
const version = "ketch-pause (upstream pause 3.10 behaviour)"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println(version)
		return
	}
	if os.Getpid() != 1 {
		// Upstream warns too: outside a PID namespace nothing gets re-parented to us.
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}

	// Registering handlers matters beyond reaping: the kernel drops SIGTERM sent to a
	// namespace's PID 1 unless a handler is installed, and the runtime stops pods with it.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		switch sig {
		case syscall.SIGCHLD:
			reap()
		default:
			fmt.Fprintf(os.Stderr, "Shutting down, got signal: %v\n", sig)
			os.Exit(0)
		}
	}
}

// reap collects every child that has exited. Signals coalesce, so one SIGCHLD can stand for
// several exits: loop until nothing is left to collect. It returns the pids it reaped.
func reap() []int {
	var pids []int
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return pids
		}
		pids = append(pids, pid)
	}
}
