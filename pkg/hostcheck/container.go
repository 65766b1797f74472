package hostcheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Capabilities a node cannot do without (linux/capability.h): mounts (containerd, the kubelet's
// volumes), and network configuration (CNI, flannel, kube-proxy's rules).
const (
	capNetAdmin = 12
	capSysAdmin = 21
)

// initCgroup is where a container's processes move on cgroup v2, out of the namespace's root
// cgroup (the name kind and k3s use).
const initCgroup = "init"

// inContainer says whether this process runs in a container: the engines' marker files, the
// container variable that systemd's container interface defines (podman, nspawn, LXC set it), or
// ketch being the first process of its PID namespace (pkg/pid1 is then its parent).
func (p *prober) inContainer() bool {
	if p.exists(".dockerenv") || p.exists("run/.containerenv") || os.Getenv("container") != "" {
		return true
	}
	self, err1 := os.Stat(p.path("proc/self/exe"))
	first, err2 := os.Stat(p.path("proc/1/exe"))
	return err1 == nil && err2 == nil && os.SameFile(self, first)
}

// adaptContainer makes a container a host a node can run on, as far as its privileges allow,
// and says what it changed, one line each. Outside a container it changes nothing. What it
// cannot change is left to the findings, which say what the container lacks.
//
//   - /sys, /proc/sys and the cgroup hierarchies read-only (Docker mounts them so unless
//     --privileged, and where --privileged is refused the remaining capabilities still allow a
//     remount): they are remounted read-write, since containerd and the kubelet write cgroups,
//     and the node sets its network's sysctls (they belong to the container's namespace).
//   - No /dev/kmsg (no --device /dev/kmsg): it is made (mknod c 1 11), or else linked to
//     /dev/console as kind does, since the kubelet's OOM watcher must open it to start.
//   - cgroup v2 with this process in the namespace's root cgroup: every process of the
//     container moves to /init and the controllers are enabled for the subtree, or the kubelet
//     cannot create the pods' cgroups (a cgroup other than the real root cannot both hold
//     processes and delegate controllers).
func (p *prober) adaptContainer() []string {
	if !p.inContainer() {
		return nil
	}
	var msgs []string
	mounts, err := p.mounts()
	if err != nil {
		return []string{fmt.Sprintf("in a container: %v", err)}
	}
	var remounted []string
	for _, m := range mounts {
		if !m.readOnly || (m.point != "/sys" && m.point != "/proc/sys" && m.fsType != "cgroup" && m.fsType != "cgroup2") {
			continue
		}
		flags := uintptr(unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		if m.point != "/sys" {
			// Per mount point: /proc/sys is a bind mount of /proc, and a cgroup hierarchy's super
			// block may be shared with the host.
			flags |= unix.MS_BIND
		}
		if err := unix.Mount("", p.path(m.point), "", flags, ""); err == nil {
			remounted = append(remounted, m.point)
		}
	}
	if len(remounted) > 0 {
		msgs = append(msgs, fmt.Sprintf("in a container: remounted read-write what the container had read-only: %s", strings.Join(remounted, " ")))
	}
	if msg := p.ensureKmsg(); msg != "" {
		msgs = append(msgs, msg)
	}
	if msg, err := p.leaveRootCgroup(); err != nil {
		msgs = append(msgs, "in a container: cgroup v2: "+err.Error())
	} else if msg != "" {
		msgs = append(msgs, msg)
	}
	return msgs
}

// ensureKmsg makes /dev/kmsg when the container has none.
func (p *prober) ensureKmsg() string {
	kmsg := p.path("dev/kmsg")
	if _, err := os.Lstat(kmsg); err == nil {
		return ""
	}
	if err := unix.Mknod(kmsg, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 11))); err == nil {
		if f, err := os.Open(kmsg); err == nil {
			f.Close()
			return "in a container: no /dev/kmsg: made it (character device 1:11) for the kubelet's OOM watcher"
		}
		// Made, but the device cgroup refuses it: a link to the console is the next best.
		os.Remove(kmsg)
	}
	if _, err := os.Stat(p.path("dev/console")); err == nil {
		if err := os.Symlink("/dev/console", kmsg); err == nil {
			return "in a container: no /dev/kmsg and none can be made: linked it to /dev/console (the kubelet's OOM watcher then sees no kernel OOM messages)"
		}
	}
	return ""
}

// leaveRootCgroup moves every process of a cgroup v2 container out of its namespace's root
// cgroup and enables the controllers for the subtree; "" when there is nothing to do.
func (p *prober) leaveRootCgroup() (string, error) {
	root := p.path("sys/fs/cgroup")
	if _, err := os.Stat(filepath.Join(root, "cgroup.subtree_control")); err != nil {
		return "", nil // not cgroup v2
	}
	if own, err := p.unifiedCgroup(); err != nil || own != "/" {
		return "", nil // already in a cgroup of its own: nothing to do
	}
	if err := os.Mkdir(filepath.Join(root, initCgroup), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("creating /%s: %w", initCgroup, err)
	}
	moved := 0
	// Processes may start while they are moved (the PID 1 init reaps, nothing else runs yet);
	// a few passes empty the root.
	for pass := 0; pass < 5; pass++ {
		pids, err := os.ReadFile(filepath.Join(root, "cgroup.procs"))
		if err != nil {
			return "", err
		}
		fields := strings.Fields(string(pids))
		if len(fields) == 0 {
			break
		}
		for _, pid := range fields {
			err := os.WriteFile(filepath.Join(root, initCgroup, "cgroup.procs"), []byte(pid), 0o644)
			switch {
			case err == nil:
				moved++
			case errors.Is(err, unix.ESRCH):
				// It ended meanwhile.
			default:
				return "", fmt.Errorf("moving process %s to /%s: %w", pid, initCgroup, err)
			}
		}
	}
	available, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		return "", err
	}
	var enabled, refused []string
	for _, c := range strings.Fields(string(available)) {
		if err := os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), []byte("+"+c), 0o644); err != nil {
			refused = append(refused, c)
			continue
		}
		enabled = append(enabled, c)
	}
	msg := fmt.Sprintf("in a container: cgroup v2: moved its %d processes from the namespace's root cgroup to /%s and enabled the controllers [%s] for the subtree", moved, initCgroup, strings.Join(enabled, " "))
	if len(refused) > 0 {
		msg += fmt.Sprintf(" (refused: %s)", strings.Join(refused, " "))
	}
	return msg, nil
}

// unifiedCgroup is this process's cgroup in the unified hierarchy: the path of /proc/self/cgroup's
// "0::" line, relative to the cgroup namespace's root.
func (p *prober) unifiedCgroup() (string, error) {
	b, err := os.ReadFile(p.path("proc/self/cgroup"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if path, ok := strings.CutPrefix(line, "0::"); ok {
			return path, nil
		}
	}
	return "", errors.New("no cgroup v2 line in /proc/self/cgroup")
}

// checkContainer is the finding of what a container lacks that no adaptation can give it; it
// names every missing piece at once, with the docker option that gives them all.
func (c *checker) checkContainer() {
	const name = "container"
	if !c.p.inContainer() {
		return
	}
	var missing []string
	if capEff, err := c.p.capEff(); err == nil {
		for _, cp := range []struct {
			bit  uint
			name string
		}{{capSysAdmin, "CAP_SYS_ADMIN"}, {capNetAdmin, "CAP_NET_ADMIN"}} {
			if capEff&(1<<cp.bit) == 0 {
				missing = append(missing, cp.name)
			}
		}
	}
	if mounts, err := c.p.mounts(); err == nil {
		sysRO, procSysRO, cgroupRO := false, false, false
		for _, m := range mounts {
			sysRO = sysRO || (m.readOnly && m.point == "/sys")
			procSysRO = procSysRO || (m.readOnly && m.point == "/proc/sys")
			cgroupRO = cgroupRO || (m.readOnly && (m.fsType == "cgroup" || m.fsType == "cgroup2"))
		}
		if sysRO {
			missing = append(missing, "/sys writable")
		}
		if procSysRO {
			missing = append(missing, "/proc/sys writable")
		}
		if cgroupRO {
			missing = append(missing, "the cgroup hierarchies writable")
		}
	}
	if len(missing) == 0 {
		c.ok(name, "in a container with the privileges a node needs")
		return
	}
	status := StatusWarning
	if c.o.node {
		status = StatusFatal
	}
	c.add(name, status, "in a container without the privileges a node needs: "+strings.Join(missing, ", ")+" (a node mounts file systems, makes cgroups and configures the network)",
		"start the container with --privileged (docker run --privileged, or privileged: true in compose); where --privileged is refused, docs/docker.md lists the options it stands for")
}
