package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
)

// hostFree refuses to start when another ketch node seems to be running, since only one can
// have the fixed ports, the cni0 bridge and the iptables chains; and the host checks at the
// end would blame this bench for its leftovers.
func hostFree() error {
	for _, port := range []string{"6443", "10250"} {
		l, err := net.Listen("tcp", ":"+port)
		if err != nil {
			return fmt.Errorf("port %s is in use: another ketch server (or Kubernetes) runs on this host; this bench needs the host to itself: %w", port, err)
		}
		l.Close()
	}
	if _, err := net.InterfaceByName("cni0"); err == nil {
		return errors.New("link cni0 exists: another ketch node runs on this host or one was not cleaned up (scripts/ketch-killall.sh)")
	}
	if chains := podNetworkChains(); len(chains) > 0 {
		return fmt.Errorf("iptables chains %s exist: another node runs on this host or one was not cleaned up (scripts/ketch-killall.sh)", strings.Join(chains, ", "))
	}
	return nil
}

// hostClean checks that nothing of a node is left after ketch-killall.sh: no process mentioning
// its run dir, no mount under its dirs, no cni0 link and no KUBE-/CNI- iptables chain.
func hostClean(d *nodeDirs) error {
	var left []string
	procs, err := listProcs()
	if err != nil {
		return err
	}
	for _, p := range procs {
		if p.pid != os.Getpid() && strings.Contains(strings.Join(p.argv, " "), d.run) {
			left = append(left, fmt.Sprintf("process %d (%s)", p.pid, strings.Join(p.argv, " ")))
		}
	}
	for _, dir := range []string{d.data, d.run} {
		mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
		if err != nil {
			return err
		}
		for _, m := range mounts {
			left = append(left, "mount "+m.Mountpoint)
		}
	}
	if _, err := net.InterfaceByName("cni0"); err == nil {
		left = append(left, "link cni0")
	}
	for _, c := range podNetworkChains() {
		left = append(left, "iptables chain "+c)
	}
	if len(left) > 0 {
		return fmt.Errorf("host not clean after ketch-killall.sh for %s: %s", d.data, strings.Join(left, "; "))
	}
	return nil
}

func podNetworkChains() []string {
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

// procInfo is one process from /proc.
type procInfo struct {
	pid, ppid int
	argv      []string
}

func listProcs() ([]procInfo, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var procs []procInfo
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err1 := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		cmdline, err2 := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err1 != nil || err2 != nil {
			continue // exited meanwhile
		}
		// The command name in parentheses may hold spaces; the fields after it do not.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		procs = append(procs, procInfo{pid: pid, ppid: ppid, argv: argv})
	}
	return procs, nil
}

// isShimOf reports whether argv is a containerd shim of the containerd at socket.
func isShimOf(argv []string, socket string) bool {
	for i, a := range argv {
		if (a == "-address" || a == "--address") && i+1 < len(argv) && argv[i+1] == socket {
			return true
		}
		if a == "-address="+socket || a == "--address="+socket {
			return true
		}
	}
	return false
}

// nodeProcs splits a node's processes by role: the server and its descendants, the shims of
// its containerd (containerd-shim-runc-v2 from the runtime bundle; they outlive the server, so
// they need not be its descendants), and everything below the shims, which is the containers.
func nodeProcs(procs []procInfo, serverPID int, socket string) (server, shims, containers []int) {
	children := map[int][]int{}
	isShim := map[int]bool{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
		if isShimOf(p.argv, socket) {
			isShim[p.pid] = true
			shims = append(shims, p.pid)
		}
	}
	var walk func(pid int, into *[]int)
	walk = func(pid int, into *[]int) {
		for _, c := range children[pid] {
			if !isShim[c] {
				*into = append(*into, c)
				walk(c, into)
			}
		}
	}
	server = []int{serverPID}
	walk(serverPID, &server)
	for _, s := range shims {
		walk(s, &containers)
	}
	return server, shims, containers
}

// nodeMemory sums the PSS of the node's processes. A process that exits while being read is
// left out.
func nodeMemory(serverPID int, socket string) (memSample, error) {
	procs, err := listProcs()
	if err != nil {
		return memSample{}, err
	}
	server, shims, containers := nodeProcs(procs, serverPID, socket)
	var m memSample
	if m.server = pssOf(server[:1]); m.server.procs != 1 {
		return m, fmt.Errorf("read the PSS of the ketch server (pid %d)", serverPID)
	}
	m.server = m.server.plus(pssOf(server[1:]))
	m.shims, m.containers = pssOf(shims), pssOf(containers)
	return m, nil
}

func pssOf(pids []int) pssGroup {
	var g pssGroup
	for _, pid := range pids {
		path := fmt.Sprintf("/proc/%d/smaps_rollup", pid)
		f, err := readKBFields(path, "Pss:")
		if err != nil {
			continue
		}
		g.pss += f["Pss:"]
		// Pss_Anon (heap, stacks) is missing before Linux 5.8; the rest is mostly the binary.
		if a, err := readKBFields(path, "Pss_Anon:"); err == nil {
			g.anon += a["Pss_Anon:"]
		}
		g.procs++
	}
	return g
}

// userHZ is the unit of the CPU times in /proc (USER_HZ), 100 on every Linux ketch runs on.
const userHZ = 100

// procCPU returns a process's own CPU time (user + system) and that of its children it has
// waited for, which is where short-lived helpers (CNI plugins, runc) end up.
func procCPU(pid int) (self, children time.Duration, err error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseProcStatCPU(string(stat))
}

func parseProcStatCPU(stat string) (self, children time.Duration, err error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("malformed stat %q", stat)
	}
	// After "pid (comm)": state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based.
	f := strings.Fields(stat[i+1:])
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("malformed stat %q", stat)
	}
	var t [4]int64
	for k := range t {
		if t[k], err = strconv.ParseInt(f[11+k], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("stat field %d: %w", 14+k, err)
		}
	}
	tick := time.Second / userHZ
	return time.Duration(t[0]+t[1]) * tick, time.Duration(t[2]+t[3]) * tick, nil
}

// hostBusy is the CPU time all cores have spent on anything but idling and waiting for I/O.
func hostBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("malformed /proc/stat line %q", line)
	}
	var busy int64
	for k, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		if k != 3 && k != 4 {
			busy += n
		}
	}
	return time.Duration(busy) * (time.Second / userHZ), nil
}

// cpuSample is where a node's CPU time has gone so far.
type cpuSample struct {
	host                   time.Duration // all cores, all processes and the kernel
	server, serverChildren time.Duration
	shims, shimChildren    time.Duration
	shimPIDs               map[int][2]time.Duration
}

func nodeCPU(serverPID int, socket string) (cpuSample, error) {
	var c cpuSample
	var err error
	if c.host, err = hostBusy(); err != nil {
		return c, err
	}
	if c.server, c.serverChildren, err = procCPU(serverPID); err != nil {
		return c, fmt.Errorf("CPU time of the ketch server: %w", err)
	}
	procs, err := listProcs()
	if err != nil {
		return c, err
	}
	_, shims, _ := nodeProcs(procs, serverPID, socket)
	c.shimPIDs = map[int][2]time.Duration{}
	for _, pid := range shims {
		if self, children, err := procCPU(pid); err == nil {
			c.shimPIDs[pid] = [2]time.Duration{self, children}
		}
	}
	return c, nil
}

// cpuUse is the CPU time spent between two samples of the same node.
type cpuUse struct {
	host, server, serverChildren, shims, shimChildren time.Duration
}

func (after cpuSample) since(before cpuSample) cpuUse {
	u := cpuUse{
		host:           after.host - before.host,
		server:         after.server - before.server,
		serverChildren: after.serverChildren - before.serverChildren,
	}
	for pid, t := range after.shimPIDs {
		b := before.shimPIDs[pid] // zero for a shim started in between
		u.shims += t[0] - b[0]
		u.shimChildren += t[1] - b[1]
	}
	return u
}

// loadAverage is the 1-minute load average, to show how busy the host was with other work.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

func (u cpuUse) String() string {
	rest := u.host - u.server - u.serverChildren - u.shims - u.shimChildren
	return fmt.Sprintf("host busy %s; ketch server %s; processes it waited for %s; shims %s; processes they waited for %s; rest %s",
		fmtSeconds(u.host), fmtSeconds(u.server), fmtSeconds(u.serverChildren), fmtSeconds(u.shims), fmtSeconds(u.shimChildren), fmtSeconds(rest))
}
