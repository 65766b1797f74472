package containerd

import (
	"os"
	"path/filepath"
	"strings"
)

// ShimName is the runc shim's program, which the runtime bundle carries: containerd derives the
// name from the runtime type io.containerd.runc.v2 and looks it up on PATH. It is upstream's
// own small binary rather than a role of ketch, because containerd starts one per pod: a
// 160 MB ketch re-executed per pod costs about 0.1 s of CPU to initialise and 20 MiB of
// memory for each pod.
const ShimName = "containerd-shim-runc-v2"

// prependPath puts dir first on this process' PATH, where containerd looks for the shim (the bundle's bin dir). It is
// process-wide by necessity: containerd resolves the shim with exec.LookPath.
func prependPath(dir string) error {
	path := os.Getenv("PATH")
	if path == "" {
		// Started with an empty environment (some init systems): the CNI plugins and the shim
		// still need iptables, mount and friends.
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	parts := []string{dir}
	for _, p := range filepath.SplitList(path) {
		if p != dir && p != "" {
			parts = append(parts, p)
		}
	}
	return os.Setenv("PATH", strings.Join(parts, string(os.PathListSeparator)))
}
