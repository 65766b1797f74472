// Package hostcheck detects what the host offers a node (cgroup layout, capabilities, kernel
// networking features, tools) and adapts what it safely can (sysctls), so that the node can
// configure containerd and the kubelet to match instead of failing later with an obscure error,
// and checks before anything starts that the ports a node's components need are free.
//
// Detection reads /proc and /sys through a root path so that tests can point it at fake files.
package hostcheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Cgroup drivers, as the kubelet and containerd's runc options name them.
const (
	CgroupDriverCgroupfs = "cgroupfs"
	CgroupDriverSystemd  = "systemd"
)

// capSysResource is CAP_SYS_RESOURCE's bit number (linux/capability.h).
const capSysResource = 24

// Host is what Check found (and changed) on this host.
type Host struct {
	// CgroupVersion is 2 when /sys/fs/cgroup is a cgroup2 mount (unified), else 1.
	CgroupVersion int
	// CgroupHybrid is true on cgroup v1 hosts that also mount a controller-less cgroup2
	// hierarchy (at /sys/fs/cgroup/unified); such hosts are v1 for every purpose here.
	CgroupHybrid bool
	// CgroupControllers are the controllers available: the v1 hierarchies mounted, or the
	// entries of cgroup.controllers on v2.
	CgroupControllers []string
	// SystemdPID1 is true when PID 1 is systemd (and it booted the host).
	SystemdPID1 bool
	// CgroupDriver is the driver the kubelet and containerd must both use: systemd only with
	// cgroup v2 under systemd, cgroupfs otherwise.
	CgroupDriver string
	// CapSysResource says whether CAP_SYS_RESOURCE is in this process' effective set. Without it
	// a negative oom_score_adj cannot be set, which breaks every pod sandbox unless containerd's
	// CRI plugin restricts oom_score_adj (RestrictOOMScoreAdj).
	CapSysResource bool
	// RestrictOOMScoreAdj is the containerd CRI option to use: true when CAP_SYS_RESOURCE is missing.
	RestrictOOMScoreAdj bool
	// IPForward is net.ipv4.ip_forward after Check (which turns it on when it can).
	IPForward bool
	// BrNetfilter is true when bridged traffic can be seen by iptables
	// (/proc/sys/net/bridge/bridge-nf-call-iptables exists); Check sets it to 1.
	BrNetfilter bool
	// Modprobe is the path of modprobe, or "" when the host has none (kernel features must
	// then be built in; that is not an error by itself).
	Modprobe string
	// Messages say, one line each, what was found or changed that the user should know; the
	// caller logs them.
	Messages []string
}

// Check verifies that this host can run a node whose data dir is dataDir ("": its free space is
// not checked) and adapts it: it loads the kernel modules a node needs when they are missing
// and modprobe exists, turns on IP forwarding and bridge-nf-call-iptables, then evaluates the
// same findings as `ketch check-config` (CheckConfig), with being root required. Every fatal
// finding goes into the one error it returns, with its fix; the warnings become Messages.
func Check(dataDir string) (*Host, error) {
	return newProber().checkAndDetect(options{node: true, dataDir: dataDir})
}

// CheckConfig evaluates what a node needs of this host, for `ketch check-config`, without
// changing anything: no module is loaded and no sysctl written. Not being root is a warning
// here, and the checks for another Kubernetes on the host are added.
func CheckConfig(dataDir string) *Report {
	return newProber().report(options{dataDir: dataDir})
}

func newProber() *prober {
	return &prober{root: "/", lookPath: exec.LookPath, run: runCommand, euid: os.Geteuid()}
}

// prober holds the seams tests replace: the root of /proc, /sys and the other files read, PATH
// lookup, command execution (modprobe, iptables --version), the effective uid, the clock's
// synchronisation status, free disk space and the port check. A nil seam is the real thing.
type prober struct {
	root      string
	lookPath  func(string) (string, error)
	run       func(name string, args ...string) error
	output    func(name string, args ...string) (string, error)
	euid      int
	adjtimex  func() (status int32, err error)
	freeSpace func(path string) (free, total uint64, err error)
	portsFree func(ports ...Port) error

	kallsymsOnce sync.Once
	kallsyms     map[string]bool // the symbols of interest found in /proc/kallsyms
	kallsymsRead bool            // /proc/kallsyms could be read
}

func runCommand(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func commandOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

func (p *prober) path(elem ...string) string {
	return filepath.Join(append([]string{p.root}, elem...)...)
}

func (p *prober) exists(elem ...string) bool {
	_, err := os.Stat(p.path(elem...))
	return err == nil
}

// readTrim is a file below the root, trimmed; "" when it cannot be read.
func (p *prober) readTrim(elem ...string) string {
	b, err := os.ReadFile(p.path(elem...))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (p *prober) modprobe() string {
	if path, err := p.lookPath("modprobe"); err == nil {
		return path
	}
	return ""
}

// load tries to load a kernel module when modprobe exists; features are usually built in on
// the hosts without modprobe, so a missing modprobe is not an error.
func (p *prober) load(module string) {
	if mp := p.modprobe(); mp != "" {
		_ = p.run(mp, module)
	}
}

// loadModules loads the modules of the features a node needs that are missing: the kernel
// loads overlay and bridge on first use only when it can, and br_netfilter never on its own
// (detect loads that one, before it sets its sysctls).
func (p *prober) loadModules() {
	if !p.hasOverlay() {
		p.load("overlay")
	}
	if !p.hasBridge() {
		p.load("bridge")
	}
}

// checkAndDetect is Check: adapt the host, then evaluate it as a node needs it.
func (p *prober) checkAndDetect(o options) (*Host, error) {
	adapted := p.adaptContainer()
	p.loadModules()
	h, detectErr := p.detect()
	if h != nil {
		h.Messages = append(adapted, h.Messages...)
	}
	o.loaded = true
	r := p.report(o)
	if err := r.Err(); err != nil {
		return nil, err
	}
	if detectErr != nil {
		// Every cause of a detection error is a fatal finding too; this is a safety net.
		return nil, fmt.Errorf("%s; missing: %w", cannotRun, detectErr)
	}
	for _, f := range r.Findings {
		if f.Status == StatusWarning && !slices.Contains(saidByDetect, f.Name) {
			h.Messages = append(h.Messages, "warning: "+f.Message)
		}
	}
	return h, nil
}

func (p *prober) detect() (*Host, error) {
	var msgs []string
	h := &Host{Modprobe: p.modprobe()}
	if h.Modprobe == "" {
		msgs = append(msgs, msgNoModprobe)
	}

	if err := p.detectCgroups(h); err != nil {
		return nil, err
	}
	h.SystemdPID1 = p.systemdPID1()
	h.CgroupDriver = CgroupDriverCgroupfs
	if h.CgroupVersion == 2 && h.SystemdPID1 {
		h.CgroupDriver = CgroupDriverSystemd
	}
	mode := "v2 (unified)"
	if h.CgroupVersion == 1 {
		mode = "v1"
		if h.CgroupHybrid {
			mode = "v1 (hybrid: cgroup2 mounted without controllers)"
		}
	}
	msgs = append(msgs, fmt.Sprintf("cgroup %s, controllers [%s], systemd as PID 1: %t -> cgroup driver %s",
		mode, strings.Join(h.CgroupControllers, " "), h.SystemdPID1, h.CgroupDriver))
	if h.CgroupVersion == 1 {
		msgs = append(msgs, "cgroup v1 is deprecated: the kubelet needs failCgroupV1: false on this host")
	}

	capEff, err := p.capEff()
	if err != nil {
		return nil, err
	}
	h.CapSysResource = capEff&(1<<capSysResource) != 0
	h.RestrictOOMScoreAdj = !h.CapSysResource
	if !h.CapSysResource {
		msgs = append(msgs, msgNoCapSysResource)
	}

	h.IPForward, msgs = p.enableSysctl("net/ipv4/ip_forward", msgs)
	for _, l := range inotifyFloors {
		msgs = p.raiseSysctl(l.key, l.node, msgs)
	}

	// br_netfilter may be a module that is not loaded yet.
	if !p.exists("proc/sys", nfCall) {
		p.load("br_netfilter")
	}
	if p.exists("proc/sys", nfCall) {
		h.BrNetfilter, msgs = p.enableSysctl(nfCall, msgs)
		if p.exists("proc/sys/net/bridge/bridge-nf-call-ip6tables") {
			_, msgs = p.enableSysctl("net/bridge/bridge-nf-call-ip6tables", msgs)
		}
	} else {
		msgs = append(msgs, msgNoBrNetfilter)
	}
	h.Messages = msgs
	return h, nil
}

// enableSysctl sets a boolean sysctl (path below /proc/sys) to 1 if it is 0 and says so.
func (p *prober) enableSysctl(name string, msgs []string) (bool, []string) {
	key := strings.ReplaceAll(name, "/", ".")
	file := p.path("proc/sys", name)
	b, err := os.ReadFile(file)
	if err != nil {
		return false, append(msgs, fmt.Sprintf("cannot read %s: %v", key, err))
	}
	if strings.TrimSpace(string(b)) == "1" {
		return true, msgs
	}
	if err := os.WriteFile(file, []byte("1\n"), 0o644); err != nil {
		return false, append(msgs, fmt.Sprintf("%s is %s and could not be set to 1: %v", key, strings.TrimSpace(string(b)), err))
	}
	return true, append(msgs, fmt.Sprintf("%s was %s: set it to 1", key, strings.TrimSpace(string(b))))
}

// raiseSysctl raises a numeric sysctl (key as in sysctl(8)) to floor if it is lower, and says so.
func (p *prober) raiseSysctl(key string, floor int, msgs []string) []string {
	file := p.path("proc/sys", strings.ReplaceAll(key, ".", "/"))
	b, err := os.ReadFile(file)
	if err != nil {
		return append(msgs, fmt.Sprintf("cannot read %s: %v", key, err))
	}
	v := strings.TrimSpace(string(b))
	if n, err := strconv.Atoi(v); err == nil && n >= floor {
		return msgs
	}
	if err := os.WriteFile(file, []byte(strconv.Itoa(floor)+"\n"), 0o644); err != nil {
		return append(msgs, fmt.Sprintf("warning: %s is %s and could not be raised to %d: %v", key, v, floor, err))
	}
	return append(msgs, fmt.Sprintf("%s was %s: raised it to %d", key, v, floor))
}

// mountEntry is one line of the mount table.
type mountEntry struct {
	point, fsType, superOpts string
	// readOnly is the mount point's own flag (a bind mount may be read-only over a writable
	// super block).
	readOnly bool
}

// mounts reads this process's mount table. It reads /proc/self/mountinfo rather than statfs'ing
// paths so that it works on fake trees, and because the table also tells hybrid cgroup hosts
// apart.
func (p *prober) mounts() ([]mountEntry, error) {
	f, err := os.Open(p.path("proc/self/mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	defer f.Close()
	var out []mountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		point, fsType, superOpts, ok := parseMountinfo(sc.Text())
		if !ok {
			continue
		}
		readOnly := slices.Contains(strings.Split(strings.Fields(sc.Text())[5], ","), "ro")
		out = append(out, mountEntry{point: point, fsType: fsType, superOpts: superOpts, readOnly: readOnly})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	return out, nil
}

// detectCgroups finds the cgroup layout in the mount table (see mounts).
func (p *prober) detectCgroups(h *Host) error {
	mounts, err := p.mounts()
	if err != nil {
		return err
	}
	var v1 []string
	unified, hybrid := false, false
	for _, m := range mounts {
		switch m.fsType {
		case "cgroup2":
			switch m.point {
			case "/sys/fs/cgroup":
				unified = true
			case "/sys/fs/cgroup/unified":
				hybrid = true
			}
		case "cgroup":
			for _, o := range strings.Split(m.superOpts, ",") {
				switch {
				case o == "rw" || o == "ro" || strings.HasPrefix(o, "release_agent=") || o == "clone_children" || o == "noprefix" || o == "xattr" || o == "cpuset_v2_mode" || o == "favordynmods":
				case strings.HasPrefix(o, "name="):
					// Named hierarchies (name=systemd) carry no resource controller.
				default:
					v1 = appendUnique(v1, o)
				}
			}
		}
	}
	switch {
	case unified:
		h.CgroupVersion = 2
		b, err := os.ReadFile(p.path("sys/fs/cgroup/cgroup.controllers"))
		if err != nil {
			return fmt.Errorf("cgroup v2: reading the root controllers: %w", err)
		}
		h.CgroupControllers = strings.Fields(string(b))
	case len(v1) > 0:
		h.CgroupVersion = 1
		h.CgroupHybrid = hybrid
		h.CgroupControllers = v1
	default:
		return errors.New("a cgroup filesystem mounted at /sys/fs/cgroup")
	}
	return nil
}

// parseMountinfo returns the mount point, filesystem type and super options of one
// /proc/self/mountinfo line (see proc(5)): the optional fields end at a lone "-".
func parseMountinfo(line string) (mountPoint, fsType, superOpts string, ok bool) {
	fields := strings.Fields(line)
	if len(fields) < 10 {
		return "", "", "", false
	}
	for i := 6; i < len(fields); i++ {
		if fields[i] == "-" {
			if i+3 >= len(fields) {
				return "", "", "", false
			}
			return unescapeMountinfo(fields[4]), fields[i+1], fields[i+3], true
		}
	}
	return "", "", "", false
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) the kernel uses in paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// systemdPID1 follows sd_booted(3): systemd created /run/systemd/system; PID 1's name is
// checked too so that a leftover directory in a container does not count.
func (p *prober) systemdPID1() bool {
	if !p.exists("run/systemd/system") {
		return false
	}
	b, err := os.ReadFile(p.path("proc/1/comm"))
	return err == nil && strings.TrimSpace(string(b)) == "systemd"
}

// capEff returns this process' effective capability set from /proc/self/status.
func (p *prober) capEff() (uint64, error) {
	b, err := os.ReadFile(p.path("proc/self/status"))
	if err != nil {
		return 0, fmt.Errorf("reading capabilities: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing CapEff %q: %w", strings.TrimSpace(v), err)
			}
			return n, nil
		}
	}
	return 0, errors.New("reading capabilities: no CapEff line in /proc/self/status")
}

func (p *prober) hasOverlay() bool {
	b, err := os.ReadFile(p.path("proc/filesystems"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == "overlay" {
			return true
		}
	}
	return false
}

// hasBridge accepts any sign of the bridge driver: a module entry (loaded, or built in with a
// version), br_netfilter's sysctls, or the driver's symbols in the kernel symbol table (a
// built-in bridge without module parameters leaves no /sys/module entry).
func (p *prober) hasBridge() bool {
	return p.exists("sys/module/bridge") || p.exists("proc/sys/net/bridge") || p.hasSymbol("br_dev_xmit")
}

// symbols are the kernel functions whose presence in /proc/kallsyms shows a built-in feature
// that leaves no other trace (no /sys/module entry without module parameters).
var symbols = []string{"br_dev_xmit", "veth_xmit", "vxlan_xmit", "nft_register_chain_type", "ipt_register_table"}

// hasSymbol says whether the kernel has the function, one of symbols; /proc/kallsyms is read
// once, since it is long.
func (p *prober) hasSymbol(name string) bool {
	p.kallsymsOnce.Do(func() {
		p.kallsyms = map[string]bool{}
		f, err := os.Open(p.path("proc/kallsyms"))
		if err != nil {
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			p.kallsymsRead = true
			if f := strings.Fields(sc.Text()); len(f) >= 3 && slices.Contains(symbols, f[2]) {
				p.kallsyms[f[2]] = true
			}
		}
	})
	return p.kallsyms[name]
}

// iptables is the path of the iptables binary, or "" when there is none.
func (p *prober) iptables() string {
	for _, name := range []string{"iptables", "iptables-nft"} {
		if path, err := p.lookPath(name); err == nil {
			return path
		}
	}
	return ""
}
