package harness

import (
	"fmt"
	"os"

	"github.com/moby/sys/mountinfo"
)

// MountsUnder lists the mount points whose paths start with one of dirs.
func MountsUnder(dirs ...string) ([]string, error) {
	var found []string
	for _, d := range dirs {
		mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(d))
		if err != nil {
			return found, fmt.Errorf("mounts under %s: %w", d, err)
		}
		for _, m := range mounts {
			found = append(found, m.Mountpoint)
		}
	}
	return found, nil
}

// RemoveUnmounted removes dir once nothing is mounted below it: never remove through a mount,
// since a volume may bind-mount the machine's own files.
func RemoveUnmounted(dir string) error {
	mounts, err := MountsUnder(dir)
	if err != nil {
		return err
	}
	if len(mounts) > 0 {
		return fmt.Errorf("%d mounts left below %s (first %s); not removing it", len(mounts), dir, mounts[0])
	}
	return os.RemoveAll(dir)
}
