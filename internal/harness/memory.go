package harness

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// MemStats are the kernel's view of one process's memory, in bytes.
type MemStats struct {
	RSS, HWM, PSS uint64
}

// ReadMemStats reads a process's VmRSS and VmHWM, and its PSS, which is reported too because RSS
// over-counts pages shared with other processes (e.g. the page cache of an mmapped db file).
func ReadMemStats(pid int) (MemStats, error) {
	status, err := ReadKBFields(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:", "VmHWM:")
	if err != nil {
		return MemStats{}, err
	}
	rollup, err := ReadKBFields(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
	if err != nil {
		return MemStats{}, err
	}
	return MemStats{RSS: status["VmRSS:"], HWM: status["VmHWM:"], PSS: rollup["Pss:"]}, nil
}

// MemGroup is the summed memory of some processes: PSS and its anonymous part (heap and stacks;
// the rest is mostly program pages, shared between the processes that run the same program),
// and RSS, which counts every page they map, shared or not.
type MemGroup struct {
	PSS, Anon, RSS uint64
	Procs          int
}

// Plus is the two groups together.
func (g MemGroup) Plus(o MemGroup) MemGroup {
	return MemGroup{PSS: g.PSS + o.PSS, Anon: g.Anon + o.Anon, RSS: g.RSS + o.RSS, Procs: g.Procs + o.Procs}
}

// MemoryOf sums the memory of the processes pids from /proc/PID/smaps_rollup. A process that
// exits while being read is left out.
func MemoryOf(pids []int) MemGroup {
	var g MemGroup
	for _, pid := range pids {
		m, ok := smapsRollup(pid)
		if !ok {
			continue
		}
		g = g.Plus(m)
	}
	return g
}

// smapsRollup reads one process's Pss, Pss_Anon and Rss in one read, so that they describe the
// same moment. Pss_Anon is missing before Linux 5.8; it then counts as 0.
func smapsRollup(pid int) (MemGroup, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return MemGroup{}, false
	}
	g := MemGroup{Procs: 1}
	var sawPSS bool
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "Pss:":
			g.PSS, sawPSS = kb*1024, true
		case "Pss_Anon:":
			g.Anon = kb * 1024
		case "Rss:":
			g.RSS = kb * 1024
		}
	}
	return g, sawPSS
}

// NodeMemory is the memory of one node's processes, by role.
type NodeMemory struct {
	Ketch, Shims, Containers MemGroup
}

// Total is all of the node's processes.
func (m NodeMemory) Total() MemGroup { return m.Ketch.Plus(m.Shims).Plus(m.Containers) }

// ReadNodeMemory sums the memory of a node's processes, by role (see NodeProcs): ketchPID is
// the node's ketch server or agent, socket its containerd's.
func ReadNodeMemory(ketchPID int, socket string) (NodeMemory, error) {
	procs, err := Procs()
	if err != nil {
		return NodeMemory{}, err
	}
	ketch, shims, containers := NodeProcs(procs, ketchPID, socket)
	var m NodeMemory
	if m.Ketch = MemoryOf(ketch[:1]); m.Ketch.Procs != 1 {
		return m, fmt.Errorf("read the memory of the ketch process (pid %d) from /proc/%d/smaps_rollup", ketchPID, ketchPID)
	}
	m.Ketch = m.Ketch.Plus(MemoryOf(ketch[1:]))
	m.Shims, m.Containers = MemoryOf(shims), MemoryOf(containers)
	return m, nil
}
