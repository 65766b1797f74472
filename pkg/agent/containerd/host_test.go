package containerd

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ketch-k8s/ketch/pkg/config"
)

// resources names what one test process creates on the host, all after its pid: the run dir
// (containerd's state, sockets, runc's state and the containers' root mounts), the cgroup
// parent of its pods, its bridge, and its data dir (containerd's root, images, snapshots).
type resources struct{ pid int }

func (r resources) runDir() string { return fmt.Sprintf("/run/kt-%d", r.pid) }
func (r resources) dataDir() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("ketch-containerd-test-%d", r.pid))
}
func (r resources) cgroupParent() string { return fmt.Sprintf("/ketch-test-%d", r.pid) }
func (r resources) bridge() string       { return fmt.Sprintf("kt%d", r.pid%100000000) } // IFNAMSIZ

// removeStale removes what test processes that no longer exist left behind (a run killed by a
// timeout or a signal cannot clean up after itself).
func removeStale(t *testing.T, runc string) {
	ents, _ := os.ReadDir("/run")
	for _, e := range ents {
		pidStr, ok := strings.CutPrefix(e.Name(), "kt-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // a run in progress (or an unrelated process that reused the pid)
		}
		t.Logf("removing what test process %d left behind", pid)
		resources{pid: pid}.remove(t.Logf, t.Logf, runc, nil)
	}
}

// remove kills the containers and shims of the run and removes its runc state, mounts,
// network namespaces, bridge, cgroups and directories. netns are namespace paths known to be
// the run's; the namespaces its veths lead to or its container processes hold are found too.
func (r resources) remove(logf, errorf func(string, ...any), runc string, netns []string) {
	runDir := r.runDir()
	// The namespaces at the other end of the bridge's veths are the run's pods', even when no
	// process holds them any more.
	bridgeNetns := r.bridgeNetns()
	containers := r.cgroupPIDs()
	nsInodes := map[uint64]bool{}
	for _, pid := range containers {
		var st unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil {
			nsInodes[st.Ino] = true
		}
	}
	for _, pid := range containers {
		logf("cleanup: killing container process %d", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	// Shims name the run's socket on their command line.
	for _, pid := range allPIDs() {
		if pid != os.Getpid() && strings.Contains(cmdline(pid), "-address "+runDir+"/") {
			logf("cleanup: killing shim %d", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	runcRoot := filepath.Join(PathsFor(Config{Paths: config.Paths{RunDir: runDir}}).RuncRoot, Namespace)
	if ents, err := os.ReadDir(runcRoot); err == nil && runc != "" {
		for _, e := range ents {
			out, err := exec.Command(runc, "--root", runcRoot, "delete", "--force", e.Name()).CombinedOutput()
			logf("cleanup: runc delete %s: %v %s", e.Name(), err, out)
		}
	}
	for _, m := range mountsUnder(runDir, r.dataDir()) {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			errorf("cleanup: unmounting %s: %v", m, err)
		} else {
			logf("cleanup: unmounted %s", m)
		}
	}
	if ents, err := os.ReadDir("/var/run/netns"); err == nil {
		for _, e := range ents {
			p := filepath.Join("/var/run/netns", e.Name())
			var st unix.Stat_t
			known := bridgeNetns[e.Name()]
			for _, n := range netns {
				known = known || n == p
			}
			if !known && (unix.Stat(p, &st) != nil || !nsInodes[st.Ino]) {
				continue
			}
			unix.Unmount(p, unix.MNT_DETACH)
			if err := os.Remove(p); err != nil {
				errorf("cleanup: removing netns %s: %v", p, err)
			} else {
				logf("cleanup: removed netns %s", p)
			}
		}
	}
	if _, err := net.InterfaceByName(r.bridge()); err == nil {
		if out, err := exec.Command("ip", "link", "del", r.bridge()).CombinedOutput(); err != nil {
			errorf("cleanup: deleting bridge %s: %v %s", r.bridge(), err, out)
		} else {
			logf("cleanup: deleted bridge %s", r.bridge())
		}
	}
	r.removeCgroups(errorf)
	for _, dir := range []string{runDir, r.dataDir()} {
		if err := os.RemoveAll(dir); err != nil {
			errorf("cleanup: %v", err)
		}
	}
}

// bridgeNetns returns the names (in /var/run/netns) of the namespaces that the veths on the
// run's bridge lead to.
func (r resources) bridgeNetns() map[string]bool {
	names := map[string]bool{}
	out, err := exec.Command("ip", "-j", "link", "show", "master", r.bridge()).Output()
	if err != nil {
		return names
	}
	var links []struct {
		NetnsID *int `json:"link_netnsid"`
	}
	if json.Unmarshal(out, &links) != nil {
		return names
	}
	out, err = exec.Command("ip", "-j", "netns", "list").Output()
	if err != nil {
		return names
	}
	var nss []struct {
		Name string `json:"name"`
		ID   *int   `json:"id"`
	}
	if json.Unmarshal(out, &nss) != nil {
		return names
	}
	for _, l := range links {
		for _, ns := range nss {
			if l.NetnsID != nil && ns.ID != nil && *l.NetnsID == *ns.ID {
				names[ns.Name] = true
			}
		}
	}
	return names
}

// cgroupPIDs lists the processes in the run's cgroup parent, in any hierarchy.
func (r resources) cgroupPIDs() []int {
	var pids []int
	seen := map[int]bool{}
	for _, dir := range r.cgroupDirs() {
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
					seen[pid] = true
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// cgroupDirs is the run's cgroup parent in every mounted hierarchy where it exists.
func (r resources) cgroupDirs() []string {
	var dirs []string
	for _, m := range mounts() {
		if m.fsType != "cgroup" && m.fsType != "cgroup2" {
			continue
		}
		d := filepath.Join(m.point, r.cgroupParent())
		if _, err := os.Stat(d); err == nil {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// removeCgroups removes the run's cgroup parent, children first (cgroups go with rmdir).
func (r resources) removeCgroups(errorf func(string, ...any)) {
	for _, dir := range r.cgroupDirs() {
		var all []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		for i := len(all) - 1; i >= 0; i-- {
			if err := unix.Rmdir(all[i]); err != nil && !errors.Is(err, unix.ENOENT) {
				errorf("cleanup: removing cgroup %s: %v", all[i], err)
			}
		}
	}
}

func allPIDs() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

type mountEntry struct{ point, fsType string }

func mounts() []mountEntry {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var ms []mountEntry
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		for i := 6; i+1 < len(f); i++ {
			if f[i] == "-" {
				ms = append(ms, mountEntry{point: strings.ReplaceAll(f[4], `\040`, " "), fsType: f[i+1]})
				break
			}
		}
	}
	return ms
}

// mountsUnder lists mount points below the given directories, deepest first.
func mountsUnder(dirs ...string) []string {
	var out []string
	for _, m := range mounts() {
		for _, d := range dirs {
			if d != "" && strings.HasPrefix(m.point, d+"/") {
				out = append(out, m.point)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}
