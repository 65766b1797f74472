package agent

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// nodeCgroupRoot is the cgroup every pod of the node lives under. With the cgroupfs driver it
// is the node's own, so that several nodes can share a machine (and a cleanup removes only its
// node's pods); under systemd it stays the kubelet's default, as systemd slices require.
func nodeCgroupRoot(nodeName string, systemd bool) string {
	if systemd {
		return ""
	}
	return "/ketch/" + nodeName
}

// ensureCgroupRoot creates root (a cgroupfs path such as /ketch/node-1) in every cgroup
// hierarchy: the kubelet refuses a cgroup root that does not exist.
func ensureCgroupRoot(root string, v2 bool) error {
	if root == "" {
		return nil
	}
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return fmt.Errorf("listing cgroup hierarchies: %w", err)
	}
	for _, m := range mounts {
		if v2 && m.FSType != "cgroup2" {
			continue
		}
		if err := mkdirCgroup(m.Mountpoint, strings.Split(strings.Trim(root, "/"), "/"), m.FSType == "cgroup2"); err != nil {
			return fmt.Errorf("creating cgroup %s under %s: %w", root, m.Mountpoint, err)
		}
	}
	return nil
}

// mkdirCgroup creates the path below a hierarchy one level at a time. A new v1 cpuset cgroup
// starts with no CPUs and memory nodes, which no task can join, so it gets its parent's; a v2
// cgroup only offers the controllers its parent delegates, so each level delegates them on.
func mkdirCgroup(mountpoint string, elems []string, v2 bool) error {
	dir := mountpoint
	for _, e := range elems {
		parent := dir
		dir = filepath.Join(dir, e)
		if v2 {
			if err := delegateControllers(parent); err != nil {
				return err
			}
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			if os.IsExist(err) {
				continue
			}
			return err
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v2 {
				break
			}
			value, err := os.ReadFile(filepath.Join(parent, f))
			if err != nil {
				break // not the cpuset hierarchy
			}
			if err := os.WriteFile(filepath.Join(dir, f), value, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

func delegateControllers(dir string) error {
	available, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return err
	}
	// One at a time, and failures ignored: a controller the host will not delegate (a threaded
	// subtree, say) must not stop the others; the kubelet names what it misses.
	for _, c := range bytes.Fields(available) {
		os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+string(c)), 0o644)
	}
	return nil
}
