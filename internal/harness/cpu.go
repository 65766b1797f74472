package harness

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc (USER_HZ), 100 on every Linux ketch runs on.
const userHZ = 100

// procCPU returns a process's own CPU time (user + system) and that of its children it has
// waited for, which is where short-lived helpers (CNI plugins, runc) end up.
func procCPU(pid int) (self, children time.Duration, err error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("CPU time of pid %d: %w", pid, err)
	}
	return parseProcStatCPU(string(stat))
}

// parseProcStatCPU reads the CPU times out of a /proc/PID/stat line.
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
		return 0, fmt.Errorf("host CPU time: %w", err)
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

// CPUSample is where a node's CPU time has gone so far.
type CPUSample struct {
	Host                 time.Duration // all cores, all processes and the kernel
	Ketch, KetchChildren time.Duration
	// ShimPIDs is each shim's own and waited-for children's time, by pid: a shim started
	// between two samples counts from zero.
	ShimPIDs map[int][2]time.Duration
}

// ReadNodeCPU samples the CPU time of the host and of a node's ketch process and shims.
func ReadNodeCPU(ketchPID int, socket string) (CPUSample, error) {
	var c CPUSample
	var err error
	if c.Host, err = hostBusy(); err != nil {
		return c, err
	}
	if c.Ketch, c.KetchChildren, err = procCPU(ketchPID); err != nil {
		return c, err
	}
	procs, err := Procs()
	if err != nil {
		return c, err
	}
	_, shims, _ := NodeProcs(procs, ketchPID, socket)
	c.ShimPIDs = map[int][2]time.Duration{}
	for _, pid := range shims {
		if self, children, err := procCPU(pid); err == nil {
			c.ShimPIDs[pid] = [2]time.Duration{self, children}
		}
	}
	return c, nil
}

// CPUUse is the CPU time spent between two samples of the same node.
type CPUUse struct {
	Host, Ketch, KetchChildren, Shims, ShimChildren time.Duration
}

// Rest is the host's CPU time that went elsewhere than the node's ketch process, shims and
// their waited-for children: kernel threads, containers, the caller, other work.
func (u CPUUse) Rest() time.Duration {
	return u.Host - u.Ketch - u.KetchChildren - u.Shims - u.ShimChildren
}

// Node is the CPU time of the node's own processes: the ketch process, the shims and the
// processes both waited for (runc, CNI plugins, iptables).
func (u CPUUse) Node() time.Duration {
	return u.Ketch + u.KetchChildren + u.Shims + u.ShimChildren
}

// Since is the CPU time spent from before to after.
func (after CPUSample) Since(before CPUSample) CPUUse {
	u := CPUUse{
		Host:          after.Host - before.Host,
		Ketch:         after.Ketch - before.Ketch,
		KetchChildren: after.KetchChildren - before.KetchChildren,
	}
	for pid, t := range after.ShimPIDs {
		b := before.ShimPIDs[pid] // zero for a shim started in between
		u.Shims += t[0] - b[0]
		u.ShimChildren += t[1] - b[1]
	}
	return u
}
