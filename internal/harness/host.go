package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"

	"github.com/ketch-k8s/ketch/pkg/lockfile"
)

// HostLock is held by every test or benchmark that runs a node on this machine: a node owns
// fixed ports, and ketch-killall.sh removes every pod network namespace and KUBE-/CNI- chain,
// so two of them must never overlap (go test runs packages in parallel).
const HostLock = "/tmp/ketch-host.lock"

// LockHost waits for HostLock until ctx ends; logf, if not nil, is told once when it has to
// wait. Release the lock when the nodes are gone.
func LockHost(ctx context.Context, logf func(string, ...any)) (*lockfile.Lock, error) {
	return lockfile.Acquire(ctx, HostLock, func(h *lockfile.HeldError) {
		if logf != nil {
			logf("waiting for %s: another test or bench runs ketch nodes (pid %s)", HostLock, h.PID)
		}
	})
}

// HostFree fails when another ketch node seems to run on this host, since only one can have the
// fixed ports, the cni0 bridge and the iptables chains, and a check for leftovers at the end
// would blame the caller for that node's.
func HostFree() error {
	for _, port := range []string{"6443", "10250"} {
		l, err := net.Listen("tcp", ":"+port)
		if err != nil {
			return fmt.Errorf("port %s is in use: another ketch server (or Kubernetes) runs on this host; this needs the host to itself: %w", port, err)
		}
		l.Close()
	}
	if _, err := net.InterfaceByName("cni0"); err == nil {
		return errors.New("link cni0 exists: another ketch node runs on this host or one was not cleaned up (package/ketch-killall.sh)")
	}
	if chains := PodNetworkChains(); len(chains) > 0 {
		return fmt.Errorf("iptables chains %s exist: another node runs on this host or one was not cleaned up (package/ketch-killall.sh)", strings.Join(chains, ", "))
	}
	return nil
}

// HostClean checks that nothing of a node is left after ketch-killall.sh: no process
// mentioning its run dir, no mount under its dirs, no cni0 link and no KUBE-/CNI- iptables
// chain.
func HostClean(dataDir, runDir string) error {
	var left []string
	procs, err := ProcessesMentioning(runDir)
	if err != nil {
		return err
	}
	for _, p := range procs {
		left = append(left, fmt.Sprintf("process %d (%s)", p.PID, strings.Join(p.Argv, " ")))
	}
	mounts, err := MountsUnder(dataDir, runDir)
	if err != nil {
		return err
	}
	for _, m := range mounts {
		left = append(left, "mount "+m)
	}
	if _, err := net.InterfaceByName("cni0"); err == nil {
		left = append(left, "link cni0")
	}
	for _, c := range PodNetworkChains() {
		left = append(left, "iptables chain "+c)
	}
	if len(left) > 0 {
		return fmt.Errorf("host not clean after ketch-killall.sh for %s: %s", dataDir, strings.Join(left, "; "))
	}
	return nil
}

// PodNetworkChains lists the KUBE- and CNI- chains of iptables and ip6tables: a node's
// kube-proxy and CNI plugins make them, and ketch-killall.sh removes them.
func PodNetworkChains() []string {
	var chains []string
	for _, cmd := range []string{"iptables-save", "ip6tables-save"} {
		out, err := exec.Command(cmd).Output()
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, ":KUBE-") || strings.HasPrefix(line, ":CNI-") {
				chains = append(chains, strings.Fields(line)[0][1:])
			}
		}
	}
	return chains
}
