package hostcheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// options say what the findings are for.
type options struct {
	// node: a node is about to start (Check). Being root is required, the checks for another
	// Kubernetes are left out (a node checks its own ports, with its own settings), and module
	// loading and sysctls have been tried already (see loaded).
	node bool
	// loaded: Check has tried to load the modules a node loads at start, so a module that is
	// still missing will not load.
	loaded bool
	// dataDir is the node's data dir, for the free disk space; "" leaves that check out.
	dataDir string
}

// Lines said both by detect (a node's start-up lines) and by the findings; a node prints each
// once (see checkAndDetect).
const (
	nfCall              = "net/bridge/bridge-nf-call-iptables"
	msgNoModprobe       = "modprobe not found: relying on kernel features being built in or already loaded"
	msgNoCapSysResource = "CAP_SYS_RESOURCE is not in the effective capability set: containerd will restrict oom_score_adj (restrict_oom_score_adj)"
	msgNoBrNetfilter    = "br_netfilter is not available (no /proc/sys/" + nfCall + "): traffic between pods on the same bridge bypasses iptables, so service traffic between pods of one node may not work"
)

// saidByDetect are the findings whose warning detect has already put in Host.Messages.
var saidByDetect = []string{"cgroup.version", "capabilities", "net.br_netfilter", "sysctl.ip_forward", "sysctl.bridge-nf-call-iptables",
	"inotify.max_user_instances", "inotify.max_user_watches"}

// inotifyFloors are the inotify limits a node raises at start, and under which check-config
// warns. They are per user, so every node and container on the host shares them: a server holds
// about 22 inotify instances (the apiserver's certificate watchers, the kubelet, containerd), an
// agent about 10, and every pod that watches files more. Three nodes in Docker on a host with the
// common default of 128 instances already fail when other programs hold some (the kubelet exits
// when cAdvisor cannot watch cgroups). Old kernels' 8192 watches are too few for the kubelet's
// watches of every cgroup on cgroup v1. A watch only costs kernel memory (about 1 KiB) when it
// is used, so the floors cost nothing until something needs them.
var inotifyFloors = []struct {
	key        string
	warn, node int // check-config warns under warn; a node raises the limit to node
}{
	{"fs.inotify.max_user_instances", 128, 1024},
	{"fs.inotify.max_user_watches", 8192, 65536},
}

// Thresholds of the resource checks.
const (
	diskWarnBytes  = 2 << 30
	diskFatalBytes = 512 << 20
	// diskWarnPercent: the kubelet evicts pods below 5% free (ketch's nodefs.available).
	diskWarnPercent = 10
)

// checker collects the findings of one report.
type checker struct {
	p        *prober
	o        options
	sys      *system
	group    string
	findings []Finding
	// backend is the iptables backend found: "nf_tables", "legacy" or "" (no iptables).
	backend string
}

func (c *checker) add(name string, status Status, message, fix string) {
	c.findings = append(c.findings, Finding{Group: c.group, Name: name, Status: status, Message: message, Fix: fix})
}

func (c *checker) ok(name, message string) { c.add(name, StatusOK, message, "") }

// report evaluates every check; it changes nothing on the host.
func (p *prober) report(o options) *Report {
	c := &checker{p: p, o: o, sys: p.system()}
	c.checkSystem()
	c.checkCgroups()
	c.checkKernel()
	c.checkNetwork()
	c.checkResources()
	if !o.node {
		c.checkConflicts()
	}
	return NewReport(c.sys.info(), c.findings)
}

func (c *checker) checkSystem() {
	c.group = "system"
	switch {
	case c.p.euid == 0:
		c.ok("root", "running as root")
	case c.o.node:
		c.add("root", StatusFatal, fmt.Sprintf("root privileges (running as uid %d)", c.p.euid),
			"run ketch server and ketch agent as root: from the init system's service, or with sudo")
	default:
		c.add("root", StatusWarning, fmt.Sprintf("not running as root (uid %d): ketch server and ketch agent must run as root, and this check sees less (the capabilities, /dev/kmsg)", c.p.euid),
			"run sudo ketch check-config for the full check")
	}

	switch capEff, err := c.p.capEff(); {
	case err != nil:
		c.add("capabilities", StatusFatal, err.Error(), "")
	case c.p.euid != 0 && !c.o.node:
		c.ok("capabilities", "not checked: not running as root")
	case capEff&(1<<capSysResource) == 0:
		c.add("capabilities", StatusWarning, msgNoCapSysResource,
			"give ketch CAP_SYS_RESOURCE (in a container: --privileged, or --cap-add SYS_RESOURCE); without it pods cannot get the negative OOM scores the kubelet gives important pods")
	default:
		c.ok("capabilities", "CAP_SYS_RESOURCE is in the effective capability set")
	}

	if c.sys.modprobe == "" {
		c.ok("modprobe", msgNoModprobe)
	} else {
		c.ok("modprobe", c.sys.modprobe)
	}

	c.checkContainer()
	c.checkKmsg()
	c.checkTimeSync()
}

func (c *checker) checkKmsg() {
	const name = "dev.kmsg"
	const why = "the kubelet's OOM watcher reads the kernel log there and the kubelet does not start without it"
	fix := "on a host: mknod /dev/kmsg c 1 11; in a container, pass the device in: docker run --device /dev/kmsg (or --privileged)"
	if _, err := os.Stat(c.p.path("dev/kmsg")); err != nil {
		if !c.o.node && c.p.inContainer() {
			c.add(name, StatusWarning, "/dev/kmsg: it does not exist in this container; ketch server and ketch agent make it at start (or link it to /dev/console)", "")
			return
		}
		c.add(name, StatusFatal, "/dev/kmsg: it does not exist; "+why, fix)
		return
	}
	if c.p.euid == 0 {
		f, err := os.Open(c.p.path("dev/kmsg"))
		if err != nil {
			c.add(name, StatusFatal, fmt.Sprintf("/dev/kmsg: it cannot be opened (%v); %s", errors.Unwrap(err), why), fix)
			return
		}
		f.Close()
	}
	c.ok(name, "/dev/kmsg is there for the kubelet's OOM watcher")
}

// staUnsync is STA_UNSYNC of adjtimex(2): the kernel's clock is not synchronized.
const staUnsync = 0x40

func (c *checker) checkTimeSync() {
	const name = "time.sync"
	adjtimex := c.p.adjtimex
	if adjtimex == nil {
		adjtimex = func() (int32, error) {
			var tx unix.Timex
			_, err := unix.Adjtimex(&tx)
			return tx.Status, err
		}
	}
	status, err := adjtimex()
	if err != nil {
		c.add(name, StatusWarning, fmt.Sprintf("the clock's synchronization cannot be read: adjtimex: %v", err), "")
		return
	}
	if status&staUnsync == 0 {
		c.ok(name, "the clock is synchronized (adjtimex)")
		return
	}
	msg := "the clock is not synchronized (adjtimex: STA_UNSYNC): certificates and tokens fail when clocks differ between nodes or from real time"
	if c.sys.pi {
		msg += "; a Raspberry Pi has no battery-backed clock, so its time is only right once synchronized"
	}
	procs := c.p.processes()
	for _, d := range []string{"chronyd", "ntpd", "systemd-timesyn", "openntpd", "timesyncd"} {
		if len(procs[d]) > 0 {
			c.add(name, StatusWarning, msg+" ("+d+" runs but has not synchronized it yet)",
				"check that it reaches its servers (chronyc sources, or timedatectl timesync-status) and that outgoing UDP port 123 is open")
			return
		}
	}
	var fix string
	switch {
	case c.sys.alpine:
		fix = "apk add chrony\nrc-update add chronyd default\nrc-service chronyd start"
	case c.sys.systemd:
		fix = "timedatectl set-ntp true (starts systemd-timesyncd), or " + c.sys.install("chrony")
	default:
		fix = c.sys.install("chrony") + " and start chronyd (or run another NTP client, such as busybox ntpd -p with your NTP server)"
	}
	c.add(name, StatusWarning, msg+"; no NTP client runs", fix)
}

// Cgroup controllers the kubelet needs, with what fails without each (from the 1.36 kubelet's
// pkg/kubelet/cm: on v1 its system validation requires cpu, cpuacct, cpuset and memory
// mounted; on v2 it uses cpu, cpuset, memory, hugetlb and pids where the root cgroup has them,
// and runc fails to create a container whose limits it cannot write).
type controllerNeed struct {
	name   string
	status Status // when missing
	why    string
}

var controllerNeeds = map[int][]controllerNeed{
	1: {
		{"cpu", StatusFatal, "the kubelet refuses to start without it (on cgroup v1 it requires cpu, cpuacct, cpuset and memory)"},
		{"cpuacct", StatusFatal, "the kubelet refuses to start without it (on cgroup v1 it requires cpu, cpuacct, cpuset and memory)"},
		{"cpuset", StatusFatal, "the kubelet refuses to start without it (on cgroup v1 it requires cpu, cpuacct, cpuset and memory)"},
		{"memory", StatusFatal, "the kubelet refuses to start without it (on cgroup v1 it requires cpu, cpuacct, cpuset and memory)"},
		{"pids", StatusWarning, "pod PID limits (podPidsLimit) are not enforced"},
	},
	2: {
		{"cpu", StatusFatal, "CPU weights and limits cannot be written, so runc fails to create pods' containers"},
		{"cpuset", StatusWarning, "the kubelet's static CPU manager policy cannot pin CPUs"},
		{"memory", StatusFatal, "memory limits cannot be written, so runc fails to create the containers of pods that have one (every bundled addon has one)"},
		{"pids", StatusWarning, "pod PID limits (podPidsLimit) are not enforced"},
	},
}

// controllerOption is the kernel option of each controller.
var controllerOption = map[string]string{
	"cpu": "CONFIG_CGROUP_SCHED", "cpuacct": "CONFIG_CGROUP_CPUACCT", "cpuset": "CONFIG_CPUSETS",
	"memory": "CONFIG_MEMCG", "pids": "CONFIG_CGROUP_PIDS",
}

func (c *checker) checkCgroups() {
	c.group = "cgroups"
	h := &Host{}
	if err := c.p.detectCgroups(h); err != nil {
		fix := ""
		if strings.Contains(err.Error(), "cgroup filesystem mounted") {
			if c.sys.alpine {
				fix = "rc-update add cgroups boot\nrc-service cgroups start"
			} else {
				fix = "mount -t cgroup2 none /sys/fs/cgroup (the init system normally mounts it at boot)"
			}
		}
		c.add("cgroup.version", StatusFatal, err.Error(), fix)
		return
	}
	systemd := c.sys.systemd
	switch {
	case h.CgroupVersion == 2:
		c.ok("cgroup.version", "cgroup v2 (unified)")
	default:
		mode := "cgroup v1"
		if h.CgroupHybrid {
			mode = "cgroup v1 (hybrid: cgroup2 at /sys/fs/cgroup/unified without controllers)"
		}
		var fix string
		switch {
		case c.sys.alpine:
			fix = "to move to cgroup v2: set rc_cgroup_mode=\"unified\" in /etc/rc.conf\nrc-update add cgroups boot\nthen reboot"
		case systemd:
			fix = "to move to cgroup v2: " + c.bootParamFix([]string{"systemd.unified_cgroup_hierarchy=1"}, []string{"systemd.unified_cgroup_hierarchy=0", "systemd.legacy_systemd_cgroup_controller=1"})
		default:
			fix = "to move to cgroup v2: have the init system mount cgroup2 at /sys/fs/cgroup instead of the v1 hierarchies, then reboot"
		}
		c.add("cgroup.version", StatusWarning, mode+": deprecated; the kubelet runs on it only with failCgroupV1: false, which ketch sets", fix)
	}

	driver := CgroupDriverCgroupfs
	why := "systemd is not PID 1"
	switch {
	case h.CgroupVersion == 2 && systemd:
		driver, why = CgroupDriverSystemd, "cgroup v2 with systemd as PID 1"
	case h.CgroupVersion == 1:
		why = "cgroup v1"
	}
	c.ok("cgroup.driver", fmt.Sprintf("the kubelet and containerd will use the %s driver (%s)", driver, why))

	available := h.CgroupControllers
	kernel, kernelKnown := c.p.procCgroups()
	for _, need := range controllerNeeds[h.CgroupVersion] {
		name := "cgroup." + need.name
		if slices.Contains(available, need.name) {
			where := "mounted"
			if h.CgroupVersion == 2 {
				where = "in /sys/fs/cgroup/cgroup.controllers"
			}
			c.ok(name, "the "+need.name+" controller is available ("+where+")")
			continue
		}
		reason, fix := c.controllerMissing(need.name, h.CgroupVersion, kernel, kernelKnown)
		c.add(name, need.status, fmt.Sprintf("the %s cgroup controller: %s; %s", need.name, reason, need.why), fix)
	}
	if h.CgroupVersion == 2 {
		c.checkDelegation(available, driver)
	}
}

// controllerMissing says why a controller is not available and how to make it so on this host.
func (c *checker) controllerMissing(name string, version int, kernel map[string]bool, kernelKnown bool) (reason, fix string) {
	enabled, compiled := kernel[name]
	switch {
	case kernelKnown && !compiled:
		return "the kernel is built without it", kernelOptionFix(controllerOption[name])
	case (compiled && !enabled) || (c.sys.pi && name == "memory"):
		reason = "disabled on the kernel command line"
		switch {
		case slices.Contains(c.sys.cmdline, "cgroup_disable="+name):
			reason += " (cgroup_disable=" + name + ")"
		case c.sys.pi && name == "memory":
			reason += " (the Raspberry Pi kernel's default)"
		}
		add := []string{"cgroup_enable=" + name}
		if c.sys.pi && name == "memory" {
			add = []string{"cgroup_memory=1", "cgroup_enable=memory"}
		}
		return reason, c.bootParamFix(add, []string{"cgroup_disable=" + name})
	case version == 1:
		if c.sys.alpine {
			return "not mounted", "rc-update add cgroups boot\nrc-service cgroups start"
		}
		return "not mounted", fmt.Sprintf("mkdir -p /sys/fs/cgroup/%s && mount -t cgroup -o %s cgroup /sys/fs/cgroup/%s (the init system normally mounts it at boot)", name, name, name)
	default:
		return "the cgroup above /sys/fs/cgroup does not delegate it (ketch runs in a container, or in a delegated subtree)",
			"run ketch where the controller is delegated: a container with its own cgroup namespace and every controller (docker run --privileged --cgroupns=private), or a systemd unit with Delegate=yes"
	}
}

// checkDelegation: on cgroup v2 a controller reaches a child cgroup only when its parent lists
// it in cgroup.subtree_control. ketch creates the node's cgroup under /sys/fs/cgroup and enables
// the controllers there itself (systemd does it for the kubelet's slices with its driver), which
// cgroup v2 refuses in a cgroup other than the root that has processes of its own: a container's
// cgroup namespace, typically.
func (c *checker) checkDelegation(available []string, driver string) {
	const name = "cgroup.delegation"
	enabled := strings.Fields(c.p.readTrim("sys/fs/cgroup/cgroup.subtree_control"))
	var missing []string
	for _, need := range controllerNeeds[2] {
		if slices.Contains(available, need.name) && !slices.Contains(enabled, need.name) {
			missing = append(missing, need.name)
		}
	}
	list := strings.Join(missing, " ")
	procs := strings.Fields(c.p.readTrim("sys/fs/cgroup/cgroup.procs"))
	switch {
	case len(missing) == 0:
		c.ok(name, "the controllers are enabled for child cgroups (/sys/fs/cgroup/cgroup.subtree_control)")
	case driver == CgroupDriverSystemd:
		c.ok(name, "systemd enables "+list+" for the kubelet's slices")
	case !c.p.exists("sys/fs/cgroup/cgroup.type"):
		c.ok(name, list+" not enabled for child cgroups yet: ketch enables them at start (/sys/fs/cgroup is the root cgroup)")
	case len(procs) == 0:
		c.ok(name, list+" not enabled for child cgroups yet: ketch enables them at start (/sys/fs/cgroup has no processes)")
	default:
		status := StatusWarning
		if slices.Contains(missing, "cpu") || slices.Contains(missing, "memory") {
			status = StatusFatal
		}
		c.add(name, status, fmt.Sprintf("the %s controllers for child cgroups: /sys/fs/cgroup is not the root cgroup (a container's, most likely) and has processes (%d), so cgroup v2 refuses to enable controllers for its children, ketch's node cgroup among them", list, len(procs)),
			"move the processes into a child cgroup before ketch starts, as the kind and k3s container entrypoints do:\n"+
				"mkdir -p /sys/fs/cgroup/init\n"+
				"xargs -rn1 < /sys/fs/cgroup/cgroup.procs > /sys/fs/cgroup/init/cgroup.procs\n"+
				"sed -e 's/ / +/g' -e 's/^/+/' < /sys/fs/cgroup/cgroup.controllers > /sys/fs/cgroup/cgroup.subtree_control")
	}
}

// procCgroups reads /proc/cgroups: the controllers the kernel has, and whether each is enabled
// (not turned off with cgroup_disable=); known is false when the file cannot be read.
func (p *prober) procCgroups() (enabled map[string]bool, known bool) {
	b, err := os.ReadFile(p.path("proc/cgroups"))
	if err != nil {
		return nil, false
	}
	enabled = map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		enabled[f[0]] = f[3] == "1"
	}
	return enabled, true
}

func (c *checker) checkResources() {
	c.group = "resources"
	c.checkSwap()
	for _, l := range inotifyFloors {
		name := "inotify." + strings.TrimPrefix(l.key, "fs.inotify.")
		v := c.p.readTrim("proc/sys", strings.ReplaceAll(l.key, ".", "/"))
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			c.add(name, StatusWarning, fmt.Sprintf("%s cannot be read", l.key), "")
		case n >= l.node:
			c.ok(name, fmt.Sprintf("%s is %d", l.key, n))
		case c.o.node:
			// The node's own raise at start failed.
			c.add(name, StatusWarning, fmt.Sprintf("%s is %d and could not be raised to %d: the kubelet, containerd and pods that watch files may run out of inotify (too many open files)", l.key, n, l.node),
				sysctlFix(l.key, strconv.Itoa(l.node)))
		case n < l.warn:
			c.add(name, StatusWarning, fmt.Sprintf("%s is %d, under %d: ketch server and ketch agent raise it to %d at start (without that, the kubelet, containerd and pods that watch files run out of inotify: too many open files)", l.key, n, l.warn, l.node),
				sysctlFix(l.key, strconv.Itoa(l.node)))
		default:
			c.ok(name, fmt.Sprintf("%s is %d: ketch server and ketch agent raise it to %d at start", l.key, n, l.node))
		}
	}
	c.checkDisk()
}

func (c *checker) checkSwap() {
	b, err := os.ReadFile(c.p.path("proc/swaps"))
	if err != nil {
		c.ok("swap", "no /proc/swaps: no swap")
		return
	}
	var n int
	var kib uint64
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		n++
		size, _ := strconv.ParseUint(f[2], 10, 64)
		kib += size
	}
	if n == 0 {
		c.ok("swap", "swap is off")
		return
	}
	fix := "swapoff -a, and remove the swap lines from /etc/fstab"
	if c.sys.pi {
		fix = "swapoff -a\nsystemctl disable --now dphys-swapfile (Raspberry Pi OS; rpi-zram or zram-swap on newer releases)"
	}
	c.add("swap", StatusWarning, fmt.Sprintf("swap is on (%d %s, %s): the kubelet runs anyway (ketch sets failSwapOn: false) and keeps pods out of swap (swapBehavior NoSwap), but memory pressure and evictions are harder to predict", n, plural(n, "device", "devices"), formatBytes(kib*1024)), fix)
}

func (c *checker) checkDisk() {
	if c.o.dataDir == "" {
		return
	}
	const name = "disk.data-dir"
	dir := filepath.Clean(c.o.dataDir)
	for !c.p.exists(dir) {
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	where := dir
	if dir != filepath.Clean(c.o.dataDir) {
		where = fmt.Sprintf("%s (the data dir %s does not exist yet)", dir, c.o.dataDir)
	}
	freeSpace := c.p.freeSpace
	if freeSpace == nil {
		freeSpace = statfsFree
	}
	free, total, err := freeSpace(c.p.path(dir))
	if err != nil {
		c.add(name, StatusWarning, fmt.Sprintf("free space in %s cannot be read: %v", where, err), "")
		return
	}
	fix := "free space on that filesystem, or put the data dir on a larger one with --data-dir (or data-dir in the config file)"
	msg := fmt.Sprintf("%s free of %s in %s", formatBytes(free), formatBytes(total), where)
	switch {
	case free < diskFatalBytes:
		c.add(name, StatusFatal, fmt.Sprintf("free disk space for the data dir: %s, under %s; images, containers and the datastore need room", msg, formatBytes(diskFatalBytes)), fix)
	case free < diskWarnBytes:
		c.add(name, StatusWarning, fmt.Sprintf("%s: under %s, little room for images and containers", msg, formatBytes(diskWarnBytes)), fix)
	case total > 0 && free*100 < total*diskWarnPercent:
		c.add(name, StatusWarning, fmt.Sprintf("%s: under %d%%; the kubelet evicts pods under 5%%", msg, diskWarnPercent), fix)
	default:
		c.ok(name, msg)
	}
}

func statfsFree(path string) (free, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}

func formatBytes(n uint64) string {
	switch {
	case n >= 10<<30:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	default:
		return fmt.Sprintf("%d MiB", n>>20)
	}
}

// otherKubernetes are the process names (as in /proc/PID/comm, at most 15 characters) of other
// Kubernetes distributions' node processes.
var otherKubernetes = []string{"k3s", "k3s-server", "k3s-agent", "k3s-init", "kubelet", "kube-apiserver", "k0s", "kubelite", "rke2", "microk8s"}

// defaultPorts are the ports of a node with the default settings; a node checks its own, with
// its settings, before it starts.
var defaultPorts = []Port{
	{"0.0.0.0:6443", "kube-apiserver", "--https-listen-port"},
	{"0.0.0.0:10250", "the kubelet", "--kubelet-arg port=PORT"},
}

func (c *checker) checkConflicts() {
	c.group = "conflicts"
	procs := c.p.processes()
	var found []string
	for _, name := range otherKubernetes {
		for _, pid := range procs[name] {
			found = append(found, fmt.Sprintf("%s (pid %d)", name, pid))
		}
	}
	if len(found) > 0 {
		c.add("conflict.processes", StatusWarning, "another Kubernetes runs here: "+strings.Join(found, ", ")+"; its kubelet and kube-proxy would fight ketch's over the iptables rules and the ports",
			"stop it before ketch starts: k3s with systemctl stop k3s (or k3s-killall.sh), a kubeadm node with systemctl stop kubelet")
	} else {
		c.ok("conflict.processes", "no other Kubernetes runs here ("+strings.Join(otherKubernetes[:5], ", ")+", ...)")
	}

	const socket = "/run/containerd/containerd.sock"
	docker := len(procs["dockerd"]) > 0
	switch {
	case c.p.exists(socket) || docker:
		what := "another containerd listens on " + socket
		if !c.p.exists(socket) {
			what = "dockerd runs"
		} else if docker {
			what += " (Docker's: dockerd runs)"
		}
		c.add("conflict.containerd", StatusWarning, what+": ketch runs its own containerd in its run dir, and both can run, but they share the host's iptables rules and cgroups",
			"if it belongs to another Kubernetes, stop it; Docker may stay, but it sets the iptables FORWARD policy to DROP: if pods on different nodes cannot reach each other, run iptables -P FORWARD ACCEPT")
	default:
		c.ok("conflict.containerd", "no other containerd at "+socket)
	}

	portsFree := c.p.portsFree
	if portsFree == nil {
		portsFree = CheckPortsFree
	}
	var busy, moves []string
	for _, port := range defaultPorts {
		if err := portsFree(port); err != nil {
			busy = append(busy, fmt.Sprintf("%s (%s)", port.Addr, port.Component))
			moves = append(moves, port.Move+" for "+port.Component)
		}
	}
	if len(busy) > 0 {
		c.add("conflict.ports", StatusWarning, "ports a node uses by default are in use: "+strings.Join(busy, ", "),
			"stop what listens there (ss -ltnp names it), or move ketch's listeners: "+strings.Join(moves, ", "))
	} else {
		c.ok("conflict.ports", "the default ports are free (6443 for kube-apiserver, 10250 for the kubelet)")
	}
}

// processes maps the names of the running processes (/proc/PID/comm) to their pids.
func (p *prober) processes() map[string][]int {
	entries, err := os.ReadDir(p.path("proc"))
	if err != nil {
		return nil
	}
	procs := map[string][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm := p.readTrim("proc", e.Name(), "comm"); comm != "" {
			procs[comm] = append(procs[comm], pid)
		}
	}
	return procs
}
