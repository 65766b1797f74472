package hostcheck

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The mount tables below are trimmed copies of real ones.
const (
	mountinfoHybrid = `22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 22 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 31 0:32 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
36 31 0:33 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
37 31 0:34 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
38 28 0:35 / /mnt/with\040space rw,relatime - tmpfs tmpfs rw
`
	mountinfoV1Combined = `31 22 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
33 31 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
`
	mountinfoV2 = `22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
25 22 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`
	statusNoSysResource = "Name:\tketch\nCapInh:\t0000000000000000\nCapPrm:\t000001fffeffffff\nCapEff:\t000001fffeffffff\nCapBnd:\t000001fffeffffff\n"
	statusFull          = "Name:\tketch\nCapEff:\t000001ffffffffff\n"
)

// fakeRoot writes files (path relative to the root -> content) into a new temporary root.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if strings.HasSuffix(name, "/") { // a directory
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func read(t *testing.T, root, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// tools returns a lookPath that finds only the named tools (at /fake/<name>).
func tools(names ...string) func(string) (string, error) {
	return func(name string) (string, error) {
		for _, n := range names {
			if n == name {
				return "/fake/" + name, nil
			}
		}
		return "", exec.ErrNotFound
	}
}

func noRun(name string, args ...string) error {
	return errors.New("unexpected command " + name)
}

func hasMsg(msgs []string, substr string) bool {
	for _, m := range msgs {
		if strings.Contains(m, substr) {
			return true
		}
	}
	return false
}

// TestDetectHybridV1 is this build machine's shape: cgroup v1 with an empty cgroup2 at
// /sys/fs/cgroup/unified, no CAP_SYS_RESOURCE, ip_forward off, br_netfilter built in, no modprobe.
func TestDetectHybridV1(t *testing.T) {
	root := fakeRoot(t, map[string]string{
		"proc/self/mountinfo":                          mountinfoHybrid,
		"proc/self/status":                             statusNoSysResource,
		"proc/1/comm":                                  "process_api\n",
		"proc/sys/net/ipv4/ip_forward":                 "0\n",
		"proc/sys/net/bridge/bridge-nf-call-iptables":  "0\n",
		"proc/sys/net/bridge/bridge-nf-call-ip6tables": "1\n",
		"proc/sys/fs/inotify/max_user_instances":       "128\n",
		"proc/sys/fs/inotify/max_user_watches":         "8192\n",
	})
	h, err := (&prober{root: root, lookPath: tools("iptables"), run: noRun}).detect()
	if err != nil {
		t.Fatal(err)
	}
	msgs := h.Messages
	if h.CgroupVersion != 1 || !h.CgroupHybrid || h.CgroupDriver != CgroupDriverCgroupfs || h.SystemdPID1 {
		t.Errorf("cgroups: got version %d hybrid %t driver %q systemd %t", h.CgroupVersion, h.CgroupHybrid, h.CgroupDriver, h.SystemdPID1)
	}
	if got := strings.Join(h.CgroupControllers, ","); got != "cpu,cpuacct,memory,pids" {
		t.Errorf("controllers %q", got)
	}
	if h.CapSysResource || !h.RestrictOOMScoreAdj {
		t.Errorf("CapSysResource %t RestrictOOMScoreAdj %t, want false true", h.CapSysResource, h.RestrictOOMScoreAdj)
	}
	if !h.IPForward || read(t, root, "proc/sys/net/ipv4/ip_forward") != "1" {
		t.Errorf("ip_forward not enabled: %t", h.IPForward)
	}
	if !h.BrNetfilter || read(t, root, "proc/sys/net/bridge/bridge-nf-call-iptables") != "1" {
		t.Errorf("bridge-nf-call-iptables not enabled: %t", h.BrNetfilter)
	}
	if h.Modprobe != "" {
		t.Errorf("modprobe %q, want none", h.Modprobe)
	}
	if read(t, root, "proc/sys/fs/inotify/max_user_instances") != "1024" || read(t, root, "proc/sys/fs/inotify/max_user_watches") != "65536" {
		t.Errorf("inotify limits not raised: %s instances, %s watches", read(t, root, "proc/sys/fs/inotify/max_user_instances"), read(t, root, "proc/sys/fs/inotify/max_user_watches"))
	}
	for _, want := range []string{"net.ipv4.ip_forward was 0: set it to 1", "net.bridge.bridge-nf-call-iptables was 0", "restrict_oom_score_adj", "modprobe not found", "hybrid", "failCgroupV1",
		"fs.inotify.max_user_instances was 128: raised it to 1024", "fs.inotify.max_user_watches was 8192: raised it to 65536"} {
		if !hasMsg(msgs, want) {
			t.Errorf("no message containing %q in %q", want, msgs)
		}
	}
	if hasMsg(msgs, "ip6tables") {
		t.Errorf("ip6tables was already 1 but a message mentions it: %q", msgs)
	}
	for _, m := range msgs {
		if strings.Contains(m, "\n") {
			t.Errorf("message is not one line: %q", m)
		}
	}
}

func TestDetectV1CombinedControllers(t *testing.T) {
	root := fakeRoot(t, map[string]string{
		"proc/self/mountinfo":          mountinfoV1Combined,
		"proc/self/status":             statusFull,
		"proc/sys/net/ipv4/ip_forward": "1\n",
		// Above the floors: left as they are.
		"proc/sys/fs/inotify/max_user_instances": "8192\n",
		"proc/sys/fs/inotify/max_user_watches":   "1048576\n",
	})
	h, err := (&prober{root: root, lookPath: tools("modprobe"), run: func(string, ...string) error { return nil }}).detect()
	if err != nil {
		t.Fatal(err)
	}
	msgs := h.Messages
	if h.CgroupVersion != 1 || h.CgroupHybrid {
		t.Errorf("version %d hybrid %t", h.CgroupVersion, h.CgroupHybrid)
	}
	if got := strings.Join(h.CgroupControllers, ","); got != "cpu,cpuacct,memory" {
		t.Errorf("controllers %q", got)
	}
	if !h.CapSysResource || h.RestrictOOMScoreAdj {
		t.Errorf("CapSysResource %t RestrictOOMScoreAdj %t, want true false", h.CapSysResource, h.RestrictOOMScoreAdj)
	}
	if h.BrNetfilter || !hasMsg(msgs, "br_netfilter is not available") {
		t.Errorf("BrNetfilter %t, messages %q", h.BrNetfilter, msgs)
	}
	if hasMsg(msgs, "ip_forward") || hasMsg(msgs, "inotify") {
		t.Errorf("ip_forward was already on and the inotify limits high, but a message mentions them: %q", msgs)
	}
	if read(t, root, "proc/sys/fs/inotify/max_user_instances") != "8192" {
		t.Errorf("max_user_instances changed to %s", read(t, root, "proc/sys/fs/inotify/max_user_instances"))
	}
	if h.Modprobe != "/fake/modprobe" || hasMsg(msgs, "modprobe not found") {
		t.Errorf("modprobe %q, messages %q", h.Modprobe, msgs)
	}
}

func TestDetectV2(t *testing.T) {
	for _, tc := range []struct {
		name    string
		systemd bool
		driver  string
	}{
		{"systemd", true, CgroupDriverSystemd},
		{"no-systemd", false, CgroupDriverCgroupfs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{
				"proc/self/mountinfo":              mountinfoV2,
				"proc/self/status":                 statusFull,
				"proc/sys/net/ipv4/ip_forward":     "1\n",
				"sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
				"proc/1/comm":                      "init\n",
			}
			if tc.systemd {
				files["proc/1/comm"] = "systemd\n"
				files["run/systemd/system/"] = ""
			}
			h, err := (&prober{root: fakeRoot(t, files), lookPath: tools(), run: noRun}).detect()
			if err != nil {
				t.Fatal(err)
			}
			if h.CgroupVersion != 2 || h.CgroupHybrid || h.SystemdPID1 != tc.systemd || h.CgroupDriver != tc.driver {
				t.Errorf("version %d hybrid %t systemd %t driver %q", h.CgroupVersion, h.CgroupHybrid, h.SystemdPID1, h.CgroupDriver)
			}
			if len(h.CgroupControllers) != 8 || h.CgroupControllers[3] != "memory" {
				t.Errorf("controllers %q", h.CgroupControllers)
			}
		})
	}
}

// A leftover /run/systemd/system (as in a container image) does not make systemd PID 1.
func TestSystemdNeedsPID1(t *testing.T) {
	root := fakeRoot(t, map[string]string{"run/systemd/system/": "", "proc/1/comm": "bash\n"})
	if (&prober{root: root}).systemdPID1() {
		t.Error("systemd detected with bash as PID 1")
	}
}

func TestDetectErrors(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"no mountinfo":    {"proc/self/status": statusFull},
		"no cgroups":      {"proc/self/mountinfo": "22 28 0:21 / /sys rw - sysfs sysfs rw\n", "proc/self/status": statusFull},
		"no CapEff":       {"proc/self/mountinfo": mountinfoV1Combined, "proc/self/status": "Name:\tx\n"},
		"bad CapEff":      {"proc/self/mountinfo": mountinfoV1Combined, "proc/self/status": "CapEff:\tzz\n"},
		"v2 without root": {"proc/self/mountinfo": mountinfoV2, "proc/self/status": statusFull},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := (&prober{root: fakeRoot(t, files), lookPath: tools(), run: noRun}).detect(); err == nil {
				t.Error("no error")
			}
		})
	}
}

// A sysctl that cannot be written (read-only /proc/sys in a container) is reported, not fatal.
func TestSysctlNotWritable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write a read-only file; this test needs an unprivileged user")
	}
	root := fakeRoot(t, map[string]string{"proc/sys/net/ipv4/ip_forward": "0\n"})
	if err := os.Chmod(filepath.Join(root, "proc/sys/net/ipv4/ip_forward"), 0o444); err != nil {
		t.Fatal(err)
	}
	on, msgs := (&prober{root: root}).enableSysctl("net/ipv4/ip_forward", nil)
	if on || !hasMsg(msgs, "could not be set to 1") {
		t.Errorf("on %t messages %q", on, msgs)
	}
}

func TestParseMountinfo(t *testing.T) {
	mp, fs, opts, ok := parseMountinfo(`38 28 0:35 / /mnt/with\040space rw,relatime shared:1 master:2 - tmpfs tmpfs rw,size=10k`)
	if !ok || mp != "/mnt/with space" || fs != "tmpfs" || opts != "rw,size=10k" {
		t.Errorf("got %q %q %q %t", mp, fs, opts, ok)
	}
	for _, bad := range []string{"", "1 2 3", "38 28 0:35 / /mnt rw,relatime - tmpfs"} {
		if _, _, _, ok := parseMountinfo(bad); ok {
			t.Errorf("parsed %q", bad)
		}
	}
}

func TestCheck(t *testing.T) {
	complete := map[string]string{
		"proc/filesystems":                 "nodev\tsysfs\nnodev\tcgroup2\n\text4\nnodev\toverlay\n",
		"sys/module/bridge/version":        "2.3\n",
		"proc/self/mountinfo":              mountinfoV2,
		"proc/self/status":                 statusFull,
		"proc/sys/net/ipv4/ip_forward":     "0\n",
		"sys/fs/cgroup/cgroup.controllers": "cpu memory pids\n",
		// Namespaces and /dev/kmsg are checked since check-config came.
		"proc/self/ns/mnt": "", "proc/self/ns/uts": "", "proc/self/ns/ipc": "", "proc/self/ns/pid": "", "proc/self/ns/net": "",
		"dev/kmsg": "",
	}
	t.Run("complete", func(t *testing.T) {
		p := &prober{root: fakeRoot(t, complete), lookPath: tools("iptables-nft"), run: noRun}
		h, err := p.checkAndDetect(options{node: true})
		if err != nil {
			t.Fatal(err)
		}
		if h.CgroupVersion != 2 || !h.IPForward || !hasMsg(h.Messages, "ip_forward was 0") {
			t.Errorf("detection did not run: %+v", *h)
		}
	})
	t.Run("bridge from kallsyms", func(t *testing.T) {
		root := fakeRoot(t, map[string]string{
			"proc/filesystems": "nodev\toverlay\n",
			"proc/kallsyms":    "0000000000000000 T br_dev_queue_push_xmit\n0000000000000000 T br_dev_xmit\n",
		})
		if f := bridgeFinding(&prober{root: root, lookPath: tools("iptables"), run: noRun}); f.Status != StatusOK {
			t.Fatal(f)
		}
	})
	t.Run("everything missing", func(t *testing.T) {
		root := fakeRoot(t, map[string]string{
			"proc/filesystems": "nodev\tsysfs\n\text4\n",
			"proc/kallsyms":    "0000000000000000 T br_dev_queue_push_xmit\n",
		})
		h, err := (&prober{root: root, lookPath: tools(), run: noRun, euid: 1000}).checkAndDetect(options{node: true})
		if err == nil || h != nil {
			t.Fatalf("got %v, %v; want an error", h, err)
		}
		for _, want := range []string{"root privileges (running as uid 1000)", "overlay filesystem", "bridge support", "iptables binary", "mount table"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		t.Log(err)
	})
	t.Run("modprobe loads what is missing", func(t *testing.T) {
		root := fakeRoot(t, map[string]string{"proc/filesystems": "nodev\tsysfs\n"})
		var loaded []string
		run := func(name string, args ...string) error {
			if name != "/fake/modprobe" {
				t.Errorf("ran %s", name)
			}
			loaded = append(loaded, args...)
			switch args[0] {
			case "overlay":
				return os.WriteFile(filepath.Join(root, "proc/filesystems"), []byte("nodev\tsysfs\nnodev\toverlay\n"), 0o644)
			case "bridge":
				return os.MkdirAll(filepath.Join(root, "sys/module/bridge"), 0o755)
			}
			return nil
		}
		p := &prober{root: root, lookPath: tools("modprobe", "iptables"), run: run}
		p.loadModules()
		r := p.report(options{node: true, loaded: true})
		for _, name := range []string{"kernel.overlay", "net.bridge"} {
			if f, _ := r.Find(name); f.Status != StatusOK {
				t.Errorf("%+v", f)
			}
		}
		if strings.Join(loaded, ",") != "overlay,bridge" {
			t.Errorf("loaded %q", loaded)
		}
	})
}

// bridgeFinding is the bridge's finding of a node's check.
func bridgeFinding(p *prober) Finding {
	f, _ := p.report(options{node: true, loaded: true}).Find("net.bridge")
	return f
}

// TestHost runs the real detection and check on this machine; the agent runs as root, so does
// this test (Detect writes sysctls).
func TestHost(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("needs root: Check enables net.ipv4.ip_forward and reads the host as a node does; not with -short")
	}
	h, err := Check(t.TempDir())
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, m := range h.Messages {
		t.Log(m)
	}
	t.Logf("%+v", *h)
	if h.CgroupVersion != 1 && h.CgroupVersion != 2 {
		t.Errorf("cgroup version %d", h.CgroupVersion)
	}
	if !h.IPForward {
		t.Error("ip_forward is still off")
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("ip_forward reads %q", b)
	}
	if h.CgroupDriver == CgroupDriverSystemd && (h.CgroupVersion != 2 || !h.SystemdPID1) {
		t.Errorf("systemd driver without cgroup v2 under systemd: %+v", *h)
	}
}
