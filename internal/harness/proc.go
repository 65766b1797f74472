package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Proc is one process from /proc.
type Proc struct {
	PID, PPID int
	Argv      []string
}

// Procs lists the processes on this machine. One that exits while being read is left out.
func Procs() ([]Proc, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var procs []Proc
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
		procs = append(procs, Proc{PID: pid, PPID: ppid, Argv: argv})
	}
	return procs, nil
}

// ProcessesMentioning lists the processes, other than this one, whose command line contains s:
// what is left of a node is found by its dirs.
func ProcessesMentioning(s string) ([]Proc, error) {
	procs, err := Procs()
	if err != nil {
		return nil, err
	}
	var found []Proc
	for _, p := range procs {
		if p.PID != os.Getpid() && strings.Contains(strings.Join(p.Argv, " "), s) {
			found = append(found, p)
		}
	}
	return found, nil
}

// ReadKBFields returns the named "Name:   123 kB" fields of a /proc file, converted to bytes.
// It fails if one is missing.
func ReadKBFields(path string, names ...string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := make(map[string]uint64, len(names))
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || !want[fields[0]] {
			continue
		}
		kb, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: parse %s: %w", path, fields[0], err)
		}
		out[fields[0]] = kb * 1024
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("%s: no %s field", path, n)
		}
	}
	return out, nil
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

// NodeProcs splits a node's processes by role: the ketch process (server or agent) and its
// descendants, the shims of its containerd (containerd-shim-runc-v2 from the runtime bundle;
// they outlive the ketch process, so they need not be its descendants), and everything below the
// shims, which is the containers.
func NodeProcs(procs []Proc, ketchPID int, socket string) (ketch, shims, containers []int) {
	children := map[int][]int{}
	isShim := map[int]bool{}
	for _, p := range procs {
		children[p.PPID] = append(children[p.PPID], p.PID)
		if isShimOf(p.Argv, socket) {
			isShim[p.PID] = true
			shims = append(shims, p.PID)
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
	ketch = []int{ketchPID}
	walk(ketchPID, &ketch)
	for _, s := range shims {
		walk(s, &containers)
	}
	return ketch, shims, containers
}
