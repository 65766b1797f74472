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
	"strconv"
	"strings"
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

// Check verifies a node's hard requirements (root, the overlay filesystem, bridge support, an
// iptables binary), then detects the host and adapts it (IP forwarding,
// bridge-nf-call-iptables). When anything is missing it returns one error listing all of it.
func Check() (*Host, error) {
	p := &prober{root: "/", lookPath: exec.LookPath, run: runCommand, euid: os.Geteuid()}
	return p.checkAndDetect()
}

// prober holds the seams tests replace: the root of /proc and /sys, PATH lookup, command
// execution (modprobe) and the effective uid.
type prober struct {
	root     string
	lookPath func(string) (string, error)
	run      func(name string, args ...string) error
	euid     int
}

func runCommand(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (p *prober) path(elem ...string) string {
	return filepath.Join(append([]string{p.root}, elem...)...)
}

func (p *prober) exists(elem ...string) bool {
	_, err := os.Stat(p.path(elem...))
	return err == nil
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

func (p *prober) checkAndDetect() (*Host, error) {
	missing := p.missing()
	h, err := p.detect()
	if err != nil {
		missing = append(missing, err.Error())
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("this host cannot run a ketch node; missing: %s", strings.Join(missing, "; "))
	}
	return h, nil
}

func (p *prober) detect() (*Host, error) {
	var msgs []string
	h := &Host{Modprobe: p.modprobe()}
	if h.Modprobe == "" {
		msgs = append(msgs, "modprobe not found: relying on kernel features being built in or already loaded")
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
		msgs = append(msgs, "CAP_SYS_RESOURCE is not in the effective capability set: containerd will restrict oom_score_adj (restrict_oom_score_adj)")
	}

	h.IPForward, msgs = p.enableSysctl("net/ipv4/ip_forward", msgs)

	// br_netfilter may be a module that is not loaded yet.
	const nfCall = "net/bridge/bridge-nf-call-iptables"
	if !p.exists("proc/sys", nfCall) {
		p.load("br_netfilter")
	}
	if p.exists("proc/sys", nfCall) {
		h.BrNetfilter, msgs = p.enableSysctl(nfCall, msgs)
		if p.exists("proc/sys/net/bridge/bridge-nf-call-ip6tables") {
			_, msgs = p.enableSysctl("net/bridge/bridge-nf-call-ip6tables", msgs)
		}
	} else {
		msgs = append(msgs, "br_netfilter is not available (no /proc/sys/"+nfCall+"): traffic between pods on the same bridge bypasses iptables, so service traffic between pods of one node may not work")
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

// detectCgroups reads the mount table rather than statfs'ing /sys/fs/cgroup so that it works on
// fake trees, and because the mount table also tells hybrid hosts apart.
func (p *prober) detectCgroups(h *Host) error {
	f, err := os.Open(p.path("proc/self/mountinfo"))
	if err != nil {
		return fmt.Errorf("reading the mount table: %w", err)
	}
	defer f.Close()
	var v1 []string
	unified, hybrid := false, false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		mountPoint, fsType, superOpts, ok := parseMountinfo(sc.Text())
		if !ok {
			continue
		}
		switch fsType {
		case "cgroup2":
			switch mountPoint {
			case "/sys/fs/cgroup":
				unified = true
			case "/sys/fs/cgroup/unified":
				hybrid = true
			}
		case "cgroup":
			for _, o := range strings.Split(superOpts, ",") {
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
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the mount table: %w", err)
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

// missing lists the hard requirements the host lacks.
func (p *prober) missing() []string {
	var missing []string
	if p.euid != 0 {
		missing = append(missing, fmt.Sprintf("root privileges (running as uid %d)", p.euid))
	}
	if !p.hasOverlay() {
		p.load("overlay")
		if !p.hasOverlay() {
			missing = append(missing, "the overlay filesystem (not in /proc/filesystems; enable CONFIG_OVERLAY_FS or load the overlay module)")
		}
	}
	if !p.hasBridge() {
		p.load("bridge")
		if !p.hasBridge() {
			missing = append(missing, "Linux bridge support (enable CONFIG_BRIDGE or load the bridge module)")
		}
	}
	if !p.hasIptables() {
		missing = append(missing, "an iptables binary on PATH (iptables or iptables-nft; install the iptables package)")
	}
	return missing
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
	if p.exists("sys/module/bridge") || p.exists("proc/sys/net/bridge") {
		return true
	}
	f, err := os.Open(p.path("proc/kallsyms"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[2] == "br_dev_xmit" {
			return true
		}
	}
	return false
}

func (p *prober) hasIptables() bool {
	for _, name := range []string{"iptables", "iptables-nft"} {
		if _, err := p.lookPath(name); err == nil {
			return true
		}
	}
	return false
}
