package hostcheck

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ketch-k8s/ketch/internal/testutil"
)

// Docker's mounts in a container that is not --privileged: /sys and the cgroup hierarchies
// read-only.
const mountinfoDockerRO = `590 580 0:79 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
599 590 0:79 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw
600 590 0:80 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
601 600 0:81 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
602 601 0:29 / /sys/fs/cgroup/cpu ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu
603 601 0:30 / /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,memory
`

// docker run's default capabilities: no CAP_SYS_ADMIN (21), no CAP_NET_ADMIN (12).
const statusDockerDefault = "Name:\tketch\nCapEff:\t00000000a80425fb\n"

func TestContainerFindings(t *testing.T) {
	for _, tc := range []struct {
		name   string
		files  map[string]string
		node   bool
		status Status
		want   []string
	}{
		{"docker run without privileges", map[string]string{".dockerenv": "", "proc/self/status": statusDockerDefault, "proc/self/mountinfo": mountinfoDockerRO},
			true, StatusFatal, []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "/sys writable", "/proc/sys writable", "the cgroup hierarchies writable"}},
		{"check-config in that container", map[string]string{".dockerenv": "", "proc/self/status": statusDockerDefault, "proc/self/mountinfo": mountinfoDockerRO},
			false, StatusWarning, []string{"CAP_SYS_ADMIN"}},
		{"podman, privileged", map[string]string{"run/.containerenv": "", "proc/self/status": statusFull, "proc/self/mountinfo": mountinfoHybrid},
			true, StatusOK, []string{"with the privileges a node needs"}},
		{"capabilities but read-only cgroups", map[string]string{".dockerenv": "", "proc/self/status": statusNoSysResource, "proc/self/mountinfo": mountinfoDockerRO},
			true, StatusFatal, []string{"/sys writable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &checker{p: &prober{root: fakeRoot(t, tc.files), lookPath: tools(), run: noRun}, o: options{node: tc.node}}
			c.checkContainer()
			if len(c.findings) != 1 {
				t.Fatalf("findings: %+v", c.findings)
			}
			f := c.findings[0]
			if f.Status != tc.status {
				t.Errorf("status %v, want %v: %s", f.Status, tc.status, f.Message)
			}
			for _, w := range tc.want {
				if !strings.Contains(f.Message, w) {
					t.Errorf("message %q does not say %q", f.Message, w)
				}
			}
			if tc.status != StatusOK && !strings.Contains(f.Fix, "--privileged") {
				t.Errorf("fix %q does not name --privileged", f.Fix)
			}
			if tc.name == "capabilities but read-only cgroups" && strings.Contains(f.Message, "CAP_") {
				t.Errorf("a capability it has is named missing: %s", f.Message)
			}
		})
	}
	// Outside a container there is no finding at all.
	c := &checker{p: &prober{root: fakeRoot(t, map[string]string{"proc/self/status": statusDockerDefault}), lookPath: tools(), run: noRun}, o: options{node: true}}
	if os.Getenv("container") == "" {
		c.checkContainer()
		if len(c.findings) != 0 {
			t.Errorf("findings outside a container: %+v", c.findings)
		}
	}
}

// The cgroup v2 adaptation runs in a child of this test binary: in a new cgroup namespace rooted
// at a cgroup the test makes in the machine's cgroup2 hierarchy, with that hierarchy mounted as
// the fake root's /sys/fs/cgroup, as a container sees its own.
func TestMain(m *testing.M) {
	if root := os.Getenv("HOSTCHECK_TEST_LEAVE_ROOT"); root != "" {
		os.Exit(leaveRootChild(root))
	}
	os.Exit(m.Run())
}

func leaveRootChild(root string) int {
	fail := func(format string, a ...any) int { fmt.Printf(format+"\n", a...); return 1 }
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail("making mounts private: %v", err)
	}
	cg := filepath.Join(root, "sys/fs/cgroup")
	if err := unix.Mount("cgroup2", cg, "cgroup2", 0, ""); err != nil {
		return fail("mounting cgroup2: %v", err)
	}
	// Two more processes of the "container", as PID 1 and ketch are.
	var sleepers []*exec.Cmd
	for i := 0; i < 2; i++ {
		s := exec.Command("sleep", "60")
		if err := s.Start(); err != nil {
			return fail("%v", err)
		}
		sleepers = append(sleepers, s)
	}
	defer func() {
		for _, s := range sleepers {
			s.Process.Kill()
			s.Wait()
		}
	}()
	msg, err := (&prober{root: root}).leaveRootCgroup()
	if err != nil {
		return fail("leaveRootCgroup: %v", err)
	}
	fmt.Println("message:", msg)
	procs := func(dir string) string {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		return strings.Join(strings.Fields(string(b)), " ")
	}
	fmt.Printf("root: [%s]\n", procs(cg))
	fmt.Printf("init: [%s]\n", procs(filepath.Join(cg, initCgroup)))
	fmt.Printf("pids: [%d %d %d]\n", os.Getpid(), sleepers[0].Process.Pid, sleepers[1].Process.Pid)
	own, _ := (&prober{root: "/"}).unifiedCgroup()
	fmt.Printf("own: %s\n", own)
	return 0
}

// TestLeaveRootCgroup: every process in the namespace's root cgroup moves to /init, which a
// container's root cgroup needs before it can delegate controllers to the kubelet's cgroups.
func TestLeaveRootCgroup(t *testing.T) {
	testutil.NeedsRoot(t, "makes a cgroup and a cgroup namespace")
	hierarchy := cgroup2Mount(t)
	cg, err := os.MkdirTemp(hierarchy, "ketch-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(filepath.Join(cg, initCgroup))
		if err := os.Remove(cg); err != nil {
			t.Errorf("removing the test's cgroup: %v", err)
		}
	})
	fd, err := unix.Open(cg, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "sys/fs/cgroup"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/proc", filepath.Join(root, "proc")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), "HOSTCHECK_TEST_LEAVE_ROOT="+root)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWCGROUP | syscall.CLONE_NEWNS, UseCgroupFD: true, CgroupFD: fd, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			lines[k] = v
		}
	}
	if !strings.Contains(lines["message"], "moved its 3 processes") || !strings.Contains(lines["message"], "/init") {
		t.Errorf("message: %q\n%s", lines["message"], out)
	}
	if lines["root"] != "[]" {
		t.Errorf("processes left in the root cgroup: %s", lines["root"])
	}
	for _, pid := range strings.Fields(strings.Trim(lines["pids"], "[]")) {
		if !strings.Contains(" "+strings.Trim(lines["init"], "[]")+" ", " "+pid+" ") {
			t.Errorf("process %s is not in /init: %s", pid, lines["init"])
		}
	}
	if lines["own"] != "/"+initCgroup {
		t.Errorf("the process's own cgroup is %q, want /%s", lines["own"], initCgroup)
	}
}

// cgroup2Mount is where the machine's cgroup2 hierarchy is mounted: /sys/fs/cgroup on cgroup
// v2, /sys/fs/cgroup/unified on hybrid hosts.
func cgroup2Mount(t *testing.T) string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if point, fsType, _, ok := parseMountinfo(sc.Text()); ok && fsType == "cgroup2" {
			return point
		}
	}
	t.Skip("no cgroup2 hierarchy on this machine")
	return ""
}
