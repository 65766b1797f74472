package hostcheck

import (
	"bytes"
	"compress/gzip"
	"errors"
	"maps"
	"strings"
	"testing"
)

// allOptions are the kernel options the checks read, all built in.
var allOptions = []string{
	"CONFIG_OVERLAY_FS", "CONFIG_BRIDGE", "CONFIG_BRIDGE_NETFILTER", "CONFIG_VETH", "CONFIG_VXLAN",
	"CONFIG_NF_TABLES", "CONFIG_NFT_COMPAT", "CONFIG_NF_CONNTRACK", "CONFIG_IP_NF_IPTABLES",
	"CONFIG_NETFILTER_XT_MATCH_COMMENT", "CONFIG_NETFILTER_XT_MATCH_CONNTRACK", "CONFIG_NETFILTER_XT_MATCH_ADDRTYPE",
	"CONFIG_NETFILTER_XT_MATCH_MULTIPORT", "CONFIG_NETFILTER_XT_MATCH_STATISTIC", "CONFIG_NETFILTER_XT_MARK",
	"CONFIG_NETFILTER_XT_TARGET_MASQUERADE", "CONFIG_NETFILTER_XT_NAT", "CONFIG_IP_NF_TARGET_REJECT",
	"CONFIG_CGROUP_BPF", "CONFIG_CGROUP_DEVICE", "CONFIG_CGROUP_FREEZER", "CONFIG_FAIR_GROUP_SCHED",
	"CONFIG_CFS_BANDWIDTH", "CONFIG_POSIX_MQUEUE", "CONFIG_KEYS",
}

// kernelConfig is a config file with every option of allOptions built in, then the changes
// (option -> y, m, or "" for "is not set").
func kernelConfigText(changes map[string]string) string {
	var b strings.Builder
	b.WriteString("#\n# Automatically generated file; DO NOT EDIT.\n#\n")
	for _, o := range allOptions {
		v, changed := changes[o]
		switch {
		case !changed:
			b.WriteString(o + "=y\n")
		case v == "":
			b.WriteString("# " + o + " is not set\n")
		default:
			b.WriteString(o + "=" + v + "\n")
		}
	}
	return b.String()
}

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	if _, err := z.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

const procCgroupsAll = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t0\t1\t1\ncpu\t0\t1\t1\ncpuacct\t0\t1\t1\nmemory\t0\t1\t1\npids\t0\t1\t1\n"

// healthy is a cgroup v2 host without systemd that has everything, with a kernel config.
func healthy(t *testing.T) map[string]string {
	files := map[string]string{
		"etc/os-release":                              "ID=debian\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\n",
		"proc/sys/kernel/osrelease":                   "6.12.0-test\n",
		"proc/config.gz":                              gzipped(t, kernelConfigText(nil)),
		"proc/cmdline":                                "root=/dev/sda1 ro quiet\n",
		"proc/self/mountinfo":                         mountinfoV2,
		"proc/self/status":                            statusFull + "Seccomp:\t0\n",
		"proc/sys/kernel/seccomp/actions_avail":       "kill_process kill_thread trap errno user_notif trace log allow\n",
		"proc/cgroups":                                procCgroupsAll,
		"sys/fs/cgroup/cgroup.controllers":            "cpuset cpu io memory hugetlb pids\n",
		"sys/fs/cgroup/cgroup.subtree_control":        "cpuset cpu io memory pids\n",
		"sys/fs/cgroup/cgroup.procs":                  "1\n",
		"proc/filesystems":                            "nodev\tsysfs\nnodev\tcgroup2\nnodev\toverlay\n",
		"sys/module/bridge/version":                   "2.3\n",
		"sys/module/veth/":                            "",
		"sys/module/vxlan/parameters/udp_port":        "8472\n",
		"sys/module/nf_tables/":                       "",
		"sys/module/nf_conntrack/":                    "",
		"proc/net/ip_tables_matches":                  "comment\nconntrack\naddrtype\nmultiport\nstatistic\nmark\n",
		"proc/net/ip_tables_targets":                  "MASQUERADE\nDNAT\nSNAT\nREJECT\n",
		"proc/sys/net/ipv4/ip_forward":                "1\n",
		"proc/sys/net/bridge/bridge-nf-call-iptables": "1\n",
		"proc/swaps":                                  "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
		"proc/sys/fs/inotify/max_user_instances":      "1024\n",
		"proc/sys/fs/inotify/max_user_watches":        "65536\n",
		"dev/kmsg":                                    "",
	}
	for _, ns := range []string{"mnt", "uts", "ipc", "pid", "net", "cgroup", "user"} {
		files["proc/self/ns/"+ns] = ""
	}
	return files
}

// with is files changed: a key with the value "-" is removed.
func with(files map[string]string, changes map[string]string) map[string]string {
	out := maps.Clone(files)
	for k, v := range changes {
		if v == "-" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// testProber is a prober of a fake root, root, with a synchronized clock, 50 GiB free of 100,
// free ports, and the named tools (iptables with the nf_tables backend unless given).
func testProber(t *testing.T, files map[string]string, toolNames ...string) *prober {
	if len(toolNames) == 0 {
		toolNames = []string{"iptables"}
	}
	return &prober{
		root: fakeRoot(t, files), lookPath: tools(toolNames...), run: noRun,
		output:    func(string, ...string) (string, error) { return "iptables v1.8.11 (nf_tables)\n", nil },
		adjtimex:  func() (int32, error) { return 0x2001, nil }, // STA_PLL | STA_NANO
		freeSpace: func(string) (uint64, uint64, error) { return 50 << 30, 100 << 30, nil },
		portsFree: func(...Port) error { return nil },
	}
}

// finding is the named finding of r; the test fails if there is none.
func finding(t *testing.T, r *Report, name string) Finding {
	t.Helper()
	f, ok := r.Find(name)
	if !ok {
		t.Fatalf("no finding %s in:\n%s", name, text(r))
	}
	return f
}

func text(r *Report) string {
	var b strings.Builder
	r.WriteText(&b)
	return b.String()
}

// want checks a finding's status, and that its message and fix contain the strings given.
func want(t *testing.T, r *Report, name string, status Status, inMessage []string, inFix ...string) {
	t.Helper()
	f := finding(t, r, name)
	if f.Status != status {
		t.Errorf("%s: status %s, want %s: %s\nfix: %s", name, f.Status, status, f.Message, f.Fix)
	}
	for _, s := range inMessage {
		if !strings.Contains(f.Message, s) {
			t.Errorf("%s: message %q lacks %q", name, f.Message, s)
		}
	}
	for _, s := range inFix {
		if !strings.Contains(f.Fix, s) {
			t.Errorf("%s: fix %q lacks %q", name, f.Fix, s)
		}
	}
	if status != StatusOK && f.Fix == "" {
		t.Errorf("%s: %s without a fix", name, status)
	}
}

// TestHealthyHost: a host with everything has only ok findings, each group has some, and the
// report is valid for a node too.
func TestHealthyHost(t *testing.T) {
	p := testProber(t, healthy(t))
	r := p.report(options{dataDir: "/var/lib/ketch"})
	t.Log("\n" + text(r))
	for _, f := range r.Findings {
		if f.Status != StatusOK {
			t.Errorf("%s: %s: %s", f.Name, f.Status, f.Message)
		}
		if strings.Contains(f.Message, "\n") {
			t.Errorf("%s: message of several lines: %q", f.Name, f.Message)
		}
	}
	if r.Summary != (Summary{OK: len(r.Findings), Status: StatusOK}) {
		t.Errorf("summary %+v of %d findings", r.Summary, len(r.Findings))
	}
	groups := map[string]bool{}
	for _, f := range r.Findings {
		groups[f.Group] = true
	}
	for _, g := range Groups {
		if !groups[g.ID] {
			t.Errorf("no finding in group %s", g.ID)
		}
	}
	if r.Host != (HostInfo{Kernel: "6.12.0-test", OS: "Debian GNU/Linux 13 (trixie)"}) {
		t.Errorf("host %+v", r.Host)
	}
	if r.Err() != nil {
		t.Errorf("Err: %v", r.Err())
	}
	// A node's report leaves out the other Kubernetes and says the same otherwise.
	node := p.report(options{node: true, loaded: true, dataDir: "/var/lib/ketch"})
	for _, f := range node.Findings {
		if f.Group == "conflicts" {
			t.Errorf("a node's report has %s", f.Name)
		}
	}
	if node.Summary.Status != StatusOK || len(node.Findings) != len(r.Findings)-3 {
		t.Errorf("node report: %+v, %d findings", node.Summary, len(node.Findings))
	}
}

// A Raspberry Pi on cgroup v2 without the memory controller (its kernel's default): fatal, and
// the fix is the Pi's cmdline.txt.
func TestRaspberryPiWithoutMemoryCgroup(t *testing.T) {
	pi := with(healthy(t), map[string]string{
		"proc/device-tree/model":               "Raspberry Pi 4 Model B Rev 1.5\x00",
		"proc/cgroups":                         strings.Replace(procCgroupsAll, "memory\t0\t1\t1", "memory\t0\t1\t0", 1),
		"sys/fs/cgroup/cgroup.controllers":     "cpuset cpu io pids\n",
		"sys/fs/cgroup/cgroup.subtree_control": "cpuset cpu io pids\n",
		"boot/firmware/cmdline.txt":            "console=serial0,115200 root=PARTUUID=1 rootwait\n",
		"proc/swaps":                           "Filename\tType\tSize\tUsed\tPriority\n/var/swap\tfile\t102396\t0\t-2\n",
		"etc/os-release":                       "ID=debian\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
	})
	p := testProber(t, pi)
	p.adjtimex = func() (int32, error) { return staUnsync, nil }
	r := p.report(options{})
	t.Log("\n" + text(r))
	want(t, r, "cgroup.memory", StatusFatal, []string{"memory cgroup controller: disabled on the kernel command line (the Raspberry Pi kernel's default)", "runc fails"},
		"add cgroup_memory=1 cgroup_enable=memory to the end of the single line in /boot/firmware/cmdline.txt", "reboot")
	want(t, r, "swap", StatusWarning, []string{"swap is on (1 device, 99 MiB)", "failSwapOn: false"}, "swapoff -a", "dphys-swapfile")
	want(t, r, "time.sync", StatusWarning, []string{"not synchronized", "no battery-backed clock"}, "apt-get install chrony")
	if r.Host.Model != "Raspberry Pi 4 Model B Rev 1.5" || r.Summary.Status != StatusFatal {
		t.Errorf("host %+v, summary %+v", r.Host, r.Summary)
	}

	// An older Raspberry Pi OS, with cgroup_disable=memory on the command line and the file in /boot.
	older := with(pi, map[string]string{
		"boot/firmware/cmdline.txt": "-", "boot/cmdline.txt": "console=tty1\n",
		"proc/cmdline": "console=tty1 cgroup_disable=memory root=/dev/mmcblk0p2\n", "proc/device-tree/model": "-",
		"sys/firmware/devicetree/base/model": "Raspberry Pi 3 Model B Plus Rev 1.3\x00",
	})
	r = testProber(t, older).report(options{})
	want(t, r, "cgroup.memory", StatusFatal, []string{"(cgroup_disable=memory)"},
		"add cgroup_memory=1 cgroup_enable=memory to the end of the single line in /boot/cmdline.txt", "remove cgroup_disable=memory")
}

// Alpine with OpenRC's default hybrid cgroups: a warning whose fix is OpenRC's unified mode.
func TestAlpineHybridCgroups(t *testing.T) {
	alpine := with(healthy(t), map[string]string{
		"etc/os-release":             "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\n",
		"etc/alpine-release":         "3.20.3\n",
		"proc/self/mountinfo":        mountinfoHybrid,
		"proc/net/ip_tables_matches": "-",
		"proc/config.gz":             gzipped(t, kernelConfigText(map[string]string{"CONFIG_NETFILTER_XT_MATCH_COMMENT": "m"})),
	})
	p := testProber(t, alpine, "iptables", "modprobe")
	p.adjtimex = func() (int32, error) { return staUnsync, nil }
	r := p.report(options{})
	t.Log("\n" + text(r))
	want(t, r, "cgroup.version", StatusWarning, []string{"cgroup v1 (hybrid", "failCgroupV1: false"},
		`rc_cgroup_mode="unified" in /etc/rc.conf`, "rc-update add cgroups", "reboot")
	// The mounted v1 controllers are cpu, cpuacct, memory and pids: cpuset is missing.
	want(t, r, "cgroup.cpuset", StatusFatal, []string{"not mounted", "kubelet refuses to start"}, "rc-update add cgroups boot", "rc-service cgroups start")
	want(t, r, "cgroup.pids", StatusOK, nil)
	want(t, r, "time.sync", StatusWarning, nil, "apk add chrony", "rc-update add chronyd")
	// A module the kernel loads on first use is fine.
	want(t, r, "net.xt_comment", StatusOK, []string{"module xt_comment", "loads on first use"})

	// Without any cgroup mounted (the cgroups service is not started).
	none := with(alpine, map[string]string{"proc/self/mountinfo": "22 28 0:21 / /sys rw - sysfs sysfs rw\n"})
	r = testProber(t, none).report(options{})
	want(t, r, "cgroup.version", StatusFatal, []string{"cgroup filesystem"}, "rc-update add cgroups boot")
}

// br_netfilter as a module that is not loaded: check-config says ketch loads it at start and
// how to load it at boot; a node that could not load it warns; Alpine keeps modules in
// /etc/modules; without modprobe the kernel must have it built in.
func TestMissingBrNetfilter(t *testing.T) {
	files := with(healthy(t), map[string]string{
		"proc/sys/net/bridge/bridge-nf-call-iptables": "-",
		"proc/config.gz": gzipped(t, kernelConfigText(map[string]string{"CONFIG_BRIDGE_NETFILTER": "m"})),
	})
	r := testProber(t, files, "iptables", "modprobe").report(options{})
	t.Log("\n" + text(r))
	want(t, r, "net.br_netfilter", StatusWarning, []string{"module br_netfilter is not loaded; ketch server and ketch agent load it at start", "service traffic"},
		"modprobe br_netfilter", "echo br_netfilter >> /etc/modules-load.d/ketch.conf")
	if _, ok := r.Find("sysctl.bridge-nf-call-iptables"); ok {
		t.Error("bridge-nf-call-iptables is checked without br_netfilter")
	}

	r = testProber(t, files, "iptables", "modprobe").report(options{node: true, loaded: true})
	want(t, r, "net.br_netfilter", StatusWarning, []string{"module br_netfilter did not load"}, "modprobe br_netfilter")

	alpine := with(files, map[string]string{"etc/os-release": "ID=alpine\n"})
	r = testProber(t, alpine, "iptables", "modprobe").report(options{})
	want(t, r, "net.br_netfilter", StatusWarning, nil, "echo br_netfilter >> /etc/modules")

	// No modprobe and no kernel config: the kernel must have it built in.
	bare := with(files, map[string]string{"proc/config.gz": "-"})
	r = testProber(t, bare).report(options{})
	want(t, r, "net.br_netfilter", StatusWarning, []string{"no /proc/sys/net/bridge/bridge-nf-call-iptables", "no module can be loaded (no modprobe)"},
		"cannot load modules (no modprobe): use a kernel built with CONFIG_BRIDGE_NETFILTER=y")
	want(t, r, "kernel.config", StatusWarning, []string{"no kernel config found (/proc/config.gz, /boot/config-6.12.0-test)"}, "CONFIG_IKCONFIG_PROC")
}

// A kernel config (/proc/config.gz, or /boot/config-<release>) with options missing: veth is
// fatal, VXLAN and the config-only options are warnings, and =m features load on first use.
func TestKernelConfigMissingOptions(t *testing.T) {
	config := kernelConfigText(map[string]string{"CONFIG_VETH": "", "CONFIG_VXLAN": "", "CONFIG_CFS_BANDWIDTH": "", "CONFIG_NF_CONNTRACK": "m"})
	files := with(healthy(t), map[string]string{
		"proc/config.gz":   gzipped(t, config),
		"sys/module/veth/": "-", "sys/module/vxlan/parameters/udp_port": "-", "sys/module/nf_conntrack/": "-",
	})
	r := testProber(t, files, "iptables", "modprobe").report(options{})
	t.Log("\n" + text(r))
	want(t, r, "kernel.config", StatusOK, []string{"/proc/config.gz"})
	want(t, r, "net.veth", StatusFatal, []string{"the kernel is built without it (CONFIG_VETH is not set)", "veth pair"}, "CONFIG_VETH=y")
	want(t, r, "net.vxlan", StatusWarning, []string{"CONFIG_VXLAN is not set", "host-gw"}, "CONFIG_VXLAN=y")
	want(t, r, "kernel.CONFIG_CFS_BANDWIDTH", StatusWarning, []string{"CPU limits are not enforced"}, "CONFIG_CFS_BANDWIDTH=y")
	want(t, r, "net.nf_conntrack", StatusOK, []string{"module nf_conntrack (CONFIG_NF_CONNTRACK=m), which the kernel loads on first use"})
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "missing: veth network devices") || !strings.Contains(err.Error(), "fix: use a kernel built with CONFIG_VETH=y") {
		t.Errorf("Err: %v", err)
	}

	// The same from /boot/config-<release>; a module that cannot be loaded is missing.
	boot := with(files, map[string]string{"proc/config.gz": "-", "boot/config-6.12.0-test": config})
	r = testProber(t, boot).report(options{})
	want(t, r, "kernel.config", StatusOK, []string{"/boot/config-6.12.0-test"})
	want(t, r, "net.nf_conntrack", StatusWarning, []string{"a module (CONFIG_NF_CONNTRACK=m) that is not loaded, and this host cannot load modules (no modprobe)"}, "CONFIG_NF_CONNTRACK=y")
}

// cgroup v2 controllers that are not delegated: missing from cgroup.controllers (the parent does
// not delegate them), or not enabled for children in a container's cgroup that has processes.
func TestCgroupV2Delegation(t *testing.T) {
	t.Run("not delegated by the parent", func(t *testing.T) {
		files := with(healthy(t), map[string]string{
			"sys/fs/cgroup/cgroup.controllers": "cpuset cpu pids\n", "sys/fs/cgroup/cgroup.type": "domain\n",
		})
		r := testProber(t, files).report(options{})
		want(t, r, "cgroup.memory", StatusFatal, []string{"does not delegate it"}, "--cgroupns=private", "Delegate=yes")
		want(t, r, "cgroup.delegation", StatusOK, nil)
	})
	t.Run("a container's cgroup with processes", func(t *testing.T) {
		files := with(healthy(t), map[string]string{
			"sys/fs/cgroup/cgroup.subtree_control": "\n", "sys/fs/cgroup/cgroup.type": "domain\n", "sys/fs/cgroup/cgroup.procs": "1\n57\n",
		})
		r := testProber(t, files).report(options{})
		t.Log("\n" + text(r))
		want(t, r, "cgroup.delegation", StatusFatal, []string{"the cpu cpuset memory pids controllers for child cgroups", "has processes (2)"},
			"mkdir -p /sys/fs/cgroup/init", "cgroup.subtree_control")
		want(t, r, "cgroup.memory", StatusOK, nil)

		// Only cpuset and pids not enabled: a warning.
		r = testProber(t, with(files, map[string]string{"sys/fs/cgroup/cgroup.subtree_control": "cpu memory\n"})).report(options{})
		want(t, r, "cgroup.delegation", StatusWarning, []string{"the cpuset pids controllers"}, "mkdir -p /sys/fs/cgroup/init")
	})
	for name, changes := range map[string]map[string]string{
		"the root cgroup":            {"sys/fs/cgroup/cgroup.subtree_control": "\n"},
		"a cgroup without processes": {"sys/fs/cgroup/cgroup.subtree_control": "\n", "sys/fs/cgroup/cgroup.type": "domain\n", "sys/fs/cgroup/cgroup.procs": "\n"},
		"systemd enables them":       {"sys/fs/cgroup/cgroup.subtree_control": "\n", "sys/fs/cgroup/cgroup.type": "domain\n", "proc/1/comm": "systemd\n", "run/systemd/system/": ""},
	} {
		t.Run(name, func(t *testing.T) {
			r := testProber(t, with(healthy(t), changes)).report(options{})
			want(t, r, "cgroup.delegation", StatusOK, nil)
		})
	}
}

// cgroup v1 needs cpu, cpuacct, cpuset and memory (the kubelet's own check), pids is a warning;
// a controller the kernel lacks, or that the command line disables, says so.
func TestCgroupV1Controllers(t *testing.T) {
	files := with(healthy(t), map[string]string{
		"proc/self/mountinfo": mountinfoV1Combined, // cpu,cpuacct and memory
		"proc/cgroups":        strings.Replace(procCgroupsAll, "pids\t0\t1\t1\n", "", 1),
		"proc/cmdline":        "root=/dev/sda1 cgroup_disable=memory\n",
		"etc/default/grub":    "GRUB_CMDLINE_LINUX=\"\"\n",
	})
	r := testProber(t, files).report(options{})
	want(t, r, "cgroup.memory", StatusOK, nil)
	want(t, r, "cgroup.cpuset", StatusFatal, []string{"not mounted"}, "mount -t cgroup -o cpuset cgroup /sys/fs/cgroup/cpuset")
	want(t, r, "cgroup.pids", StatusWarning, []string{"the kernel is built without it", "podPidsLimit"}, "CONFIG_CGROUP_PIDS=y")
	want(t, r, "cgroup.version", StatusWarning, []string{"cgroup v1:"}, "mount cgroup2 at /sys/fs/cgroup")

	disabled := with(files, map[string]string{
		"proc/self/mountinfo": strings.Replace(mountinfoV1Combined, "33 31 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory\n", "", 1),
		"proc/cgroups":        strings.Replace(procCgroupsAll, "memory\t0\t1\t1", "memory\t0\t1\t0", 1),
		"proc/1/comm":         "systemd\n", "run/systemd/system/": "",
	})
	r = testProber(t, disabled).report(options{})
	want(t, r, "cgroup.memory", StatusFatal, []string{"disabled on the kernel command line (cgroup_disable=memory)", "kubelet refuses to start"},
		"add cgroup_enable=memory to GRUB_CMDLINE_LINUX in /etc/default/grub", "update-grub", "remove cgroup_disable=memory", "reboot")
	want(t, r, "cgroup.version", StatusWarning, nil, "systemd.unified_cgroup_hierarchy=1 to GRUB_CMDLINE_LINUX")
}

// The system and resource checks: root, /dev/kmsg, the clock, inotify, the disk, the sysctls
// ketch sets, iptables.
func TestSystemChecks(t *testing.T) {
	base := healthy(t)
	t.Run("not root", func(t *testing.T) {
		p := testProber(t, base)
		p.euid = 1000
		r := p.report(options{})
		want(t, r, "root", StatusWarning, []string{"not running as root (uid 1000)"}, "sudo ketch check-config")
		want(t, r, "capabilities", StatusOK, []string{"not checked"})
		r = p.report(options{node: true})
		want(t, r, "root", StatusFatal, []string{"root privileges (running as uid 1000)"}, "as root")
		if err := r.Err(); err == nil || !strings.HasPrefix(err.Error(), "this host cannot run a ketch node; missing: root privileges (running as uid 1000)\n  fix: run ketch server and ketch agent as root") {
			t.Errorf("Err: %v", err)
		}
	})
	t.Run("no /dev/kmsg", func(t *testing.T) {
		r := testProber(t, with(base, map[string]string{"dev/kmsg": "-"})).report(options{})
		want(t, r, "dev.kmsg", StatusFatal, []string{"/dev/kmsg: it does not exist", "OOM watcher"}, "--device /dev/kmsg")
	})
	t.Run("clock", func(t *testing.T) {
		p := testProber(t, with(base, map[string]string{"proc/1/comm": "systemd\n", "run/systemd/system/": ""}))
		p.adjtimex = func() (int32, error) { return staUnsync, nil }
		want(t, p.report(options{}), "time.sync", StatusWarning, []string{"no NTP client runs"}, "timedatectl set-ntp true")
		p = testProber(t, with(base, map[string]string{"proc/321/comm": "chronyd\n"}))
		p.adjtimex = func() (int32, error) { return staUnsync, nil }
		want(t, p.report(options{}), "time.sync", StatusWarning, []string{"chronyd runs but has not synchronized it yet"}, "chronyc sources")
		p.adjtimex = func() (int32, error) { return 0, errors.New("EPERM") }
		if f := finding(t, p.report(options{}), "time.sync"); f.Status != StatusWarning {
			t.Errorf("%+v", f)
		}
	})
	t.Run("inotify", func(t *testing.T) {
		r := testProber(t, with(base, map[string]string{"proc/sys/fs/inotify/max_user_instances": "64\n", "proc/sys/fs/inotify/max_user_watches": "4096\n"})).report(options{})
		want(t, r, "inotify.max_user_instances", StatusWarning, []string{"is 64, under 128: ketch server and ketch agent raise it to 1024 at start"}, "sysctl -w fs.inotify.max_user_instances=1024", "/etc/sysctl.d/90-ketch.conf")
		want(t, r, "inotify.max_user_watches", StatusWarning, []string{"is 4096, under 8192"}, "sysctl -w fs.inotify.max_user_watches=65536")
		// Between the warning and the node's floor: fine, and said.
		r = testProber(t, with(base, map[string]string{"proc/sys/fs/inotify/max_user_instances": "128\n"})).report(options{})
		want(t, r, "inotify.max_user_instances", StatusOK, []string{"is 128: ketch server and ketch agent raise it to 1024 at start"})
		// A node whose raise failed says so.
		r = testProber(t, with(base, map[string]string{"proc/sys/fs/inotify/max_user_instances": "512\n"})).report(options{node: true})
		want(t, r, "inotify.max_user_instances", StatusWarning, []string{"is 512 and could not be raised to 1024"}, "sysctl -w fs.inotify.max_user_instances=1024")
	})
	t.Run("disk", func(t *testing.T) {
		p := testProber(t, with(base, map[string]string{"var/lib/": ""}))
		var asked string
		for _, tc := range []struct {
			free, total uint64
			status      Status
			message     string
		}{
			{300 << 20, 100 << 30, StatusFatal, "free disk space for the data dir: 300 MiB free of 100 GiB in /var/lib (the data dir /var/lib/ketch does not exist yet), under 512 MiB"},
			{1 << 30, 100 << 30, StatusWarning, "1.0 GiB free of 100 GiB in /var/lib (the data dir /var/lib/ketch does not exist yet): under 2.0 GiB"},
			{8 << 30, 100 << 30, StatusWarning, "under 10%; the kubelet evicts pods under 5%"},
			{50 << 30, 100 << 30, StatusOK, "50 GiB free of 100 GiB"},
		} {
			p.freeSpace = func(path string) (uint64, uint64, error) { asked = path; return tc.free, tc.total, nil }
			r := p.report(options{dataDir: "/var/lib/ketch"})
			want(t, r, "disk.data-dir", tc.status, []string{tc.message})
			if asked != p.path("var/lib") {
				t.Errorf("free space of %s, want the nearest existing parent of the data dir", asked)
			}
		}
		if _, ok := p.report(options{}).Find("disk.data-dir"); ok {
			t.Error("the disk is checked without a data dir")
		}
	})
	t.Run("sysctls ketch sets", func(t *testing.T) {
		files := with(base, map[string]string{"proc/sys/net/ipv4/ip_forward": "0\n", "proc/sys/net/bridge/bridge-nf-call-iptables": "0\n"})
		r := testProber(t, files).report(options{})
		want(t, r, "sysctl.ip_forward", StatusWarning, []string{"net.ipv4.ip_forward is 0: ketch server and ketch agent set it to 1 at start"}, "sysctl -w net.ipv4.ip_forward=1", "echo 'net.ipv4.ip_forward = 1' >> /etc/sysctl.d/90-ketch.conf")
		want(t, r, "sysctl.bridge-nf-call-iptables", StatusWarning, nil, "sysctl -w net.bridge.bridge-nf-call-iptables=1")
	})
	t.Run("iptables", func(t *testing.T) {
		r := testProber(t, base, "modprobe").report(options{})
		want(t, r, "net.iptables", StatusFatal, []string{"an iptables binary on PATH"}, "apt-get install iptables")
		p := testProber(t, with(base, map[string]string{"proc/net/ip_tables_names": "filter\n"}))
		p.output = func(string, ...string) (string, error) { return "iptables v1.8.7 (legacy)\n", nil }
		r = p.report(options{})
		want(t, r, "net.iptables", StatusOK, []string{"iptables v1.8.7 (legacy) at /fake/iptables (backend legacy)"})
		want(t, r, "net.ip_tables", StatusOK, nil)
		if _, ok := r.Find("net.nf_tables"); ok {
			t.Error("nf_tables is checked for the legacy backend")
		}
	})
	t.Run("namespaces and seccomp", func(t *testing.T) {
		r := testProber(t, with(base, map[string]string{"proc/self/ns/user": "-", "proc/sys/kernel/seccomp/actions_avail": "-"})).report(options{})
		want(t, r, "kernel.namespaces", StatusWarning, []string{"the user namespaces are missing", "hostUsers: false"}, "CONFIG_USER_NS=y")
		want(t, r, "kernel.seccomp", StatusWarning, []string{"seccomp filters are missing"}, "CONFIG_SECCOMP_FILTER=y")
		r = testProber(t, with(base, map[string]string{"proc/self/ns/pid": "-", "proc/self/ns/net": "-"})).report(options{})
		want(t, r, "kernel.namespaces", StatusFatal, []string{"the pid, net namespaces"}, "CONFIG_PID_NS=y, CONFIG_NET_NS=y")
	})
}

// Another Kubernetes on the host: its processes, a containerd socket, the default ports in use.
func TestConflicts(t *testing.T) {
	files := with(healthy(t), map[string]string{
		"proc/812/comm": "k3s-server\n", "proc/900/comm": "kubelet\n", "proc/77/comm": "dockerd\n",
		"run/containerd/containerd.sock": "",
	})
	p := testProber(t, files)
	p.portsFree = func(ports ...Port) error {
		if strings.HasSuffix(ports[0].Addr, ":6443") {
			return errors.New("in use")
		}
		return nil
	}
	r := p.report(options{})
	t.Log("\n" + text(r))
	want(t, r, "conflict.processes", StatusWarning, []string{"k3s-server (pid 812), kubelet (pid 900)"}, "systemctl stop k3s")
	want(t, r, "conflict.containerd", StatusWarning, []string{"/run/containerd/containerd.sock (Docker's: dockerd runs)"}, "iptables -P FORWARD ACCEPT")
	want(t, r, "conflict.ports", StatusWarning, []string{"0.0.0.0:6443 (kube-apiserver)"}, "ss -ltnp", "--https-listen-port")
	if r.Summary.Fatal != 0 {
		t.Errorf("another Kubernetes is fatal: %+v", r.Summary)
	}
}

// A node's Check: fatal findings are its error, with their fixes; warnings not already said by
// the detection become its messages, once.
func TestCheckUsesTheFindings(t *testing.T) {
	files := with(healthy(t), map[string]string{
		"proc/self/status": statusNoSysResource + "Seccomp:\t0\n",
		"proc/swaps":       "Filename\tType\tSize\tUsed\tPriority\n/swapfile\tfile\t2097148\t0\t-2\n",
	})
	p := testProber(t, files)
	h, err := p.checkAndDetect(options{node: true, dataDir: "/var/lib/ketch"})
	if err != nil {
		t.Fatal(err)
	}
	var capLines, swapLines int
	for _, m := range h.Messages {
		if strings.Contains(m, "CAP_SYS_RESOURCE") {
			capLines++
		}
		if strings.HasPrefix(m, "warning: swap is on") {
			swapLines++
		}
	}
	if capLines != 1 || swapLines != 1 {
		t.Errorf("messages %q: want the capability and the swap once each", h.Messages)
	}

	p = testProber(t, with(files, map[string]string{"proc/sys/kernel/seccomp/actions_avail": "-", "dev/kmsg": "-"}))
	p.freeSpace = func(string) (uint64, uint64, error) { return 100 << 20, 10 << 30, nil }
	_, err = p.checkAndDetect(options{node: true, dataDir: "/var/lib/ketch"})
	if err == nil {
		t.Fatal("no error")
	}
	t.Log(err)
	for _, want := range []string{
		"this host cannot run a ketch node; missing: /dev/kmsg: it does not exist",
		"\n  fix: on a host: mknod /dev/kmsg c 1 11",
		"\nmissing: free disk space for the data dir: 100 MiB free",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if strings.Contains(err.Error(), "seccomp") {
		t.Error("a warning is in the error")
	}
}

// TestWriteText: one line per finding, aligned, the fix under what is not ok, indented on
// every line, groups in order, and the summary.
func TestWriteText(t *testing.T) {
	r := NewReport(HostInfo{Kernel: "6.1.0", OS: "Alpine Linux v3.20", Model: "Raspberry Pi 5"}, []Finding{
		{Group: "resources", Name: "swap", Status: StatusWarning, Message: "swap is on", Fix: "swapoff -a\nthen edit /etc/fstab"},
		{Group: "system", Name: "root", Status: StatusOK, Message: "running as root", Fix: "ignored"},
		{Group: "cgroups", Name: "cgroup.memory", Status: StatusFatal, Message: "the memory cgroup controller", Fix: "add cgroup_enable=memory"},
	})
	got := text(r)
	wantText := `Host: Raspberry Pi 5, Alpine Linux v3.20, kernel 6.1.0

System
  ok       root           running as root

Cgroups
  fatal    cgroup.memory  the memory cgroup controller
                          fix: add cgroup_enable=memory

Resources
  warning  swap           swap is on
                          fix: swapoff -a
                               then edit /etc/fstab

1 ok, 1 warning, 1 fatal: this host cannot run a ketch node until the fatal findings are fixed
`
	if got != wantText {
		t.Errorf("got:\n%s\nwant:\n%s", got, wantText)
	}
	if r.Summary != (Summary{OK: 1, Warning: 1, Fatal: 1, Status: StatusFatal}) {
		t.Errorf("summary %+v", r.Summary)
	}
}
