package containerd

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/task"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"
)

// ShimName is the runc shim's program name: containerd derives it from the runtime type
// io.containerd.runc.v2 and looks it up on PATH, where Start puts a symlink to this executable.
const ShimName = "containerd-shim-runc-v2"

// shimEnv marks the shim's own daemon process. The shim's "start" step re-executes
// os.Executable() (the ketch binary itself, not the symlink) with no action argument, so
// argv[0] no longer says "shim"; the environment, which it inherits, does.
const shimEnv = "KETCH_CONTAINERD_SHIM"

// IsShim reports whether this process is the runc shim: exec'd by containerd through the
// containerd-shim-runc-v2 symlink, or the shim daemon that one re-executed. The caller's main
// must check it before anything else and then call ShimMain.
func IsShim() bool {
	return filepath.Base(os.Args[0]) == ShimName || os.Getenv(shimEnv) == "1"
}

// ShimMain runs the containerd runc v2 shim (what upstream's containerd-shim-runc-v2 main does)
// and exits; it does not return.
//
// The shim runs in its own process: containerd starts one per pod, and it outlives ketch so
// that containers keep running when ketch stops or upgrades.
func ShimMain() {
	if err := os.Setenv(shimEnv, "1"); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", ShimName, err)
		os.Exit(1)
	}
	// The plugin registry is process-global and this binary also registers containerd's daemon
	// plugins (metadata, CRI, the gRPC server...). The shim initialises every registered plugin,
	// so start from an empty registry and register only the shim's task service (as upstream's
	// task/plugin package does; importing that package would put the shim's plugin into the
	// daemon's registry instead).
	registry.Reset()
	registry.Register(&plugin.Registration{
		Type:     plugins.TTRPCPlugin,
		ID:       "task",
		Requires: []plugin.Type{plugins.EventPlugin, plugins.InternalPlugin},
		InitFn: func(ic *plugin.InitContext) (any, error) {
			pp, err := ic.GetByID(plugins.EventPlugin, "publisher")
			if err != nil {
				return nil, err
			}
			ss, err := ic.GetByID(plugins.InternalPlugin, "shutdown")
			if err != nil {
				return nil, err
			}
			return task.NewTaskService(ic.Context, pp.(shim.Publisher), ss.(shutdown.Service))
		},
	})
	// The shim parses its flags from the global flag set; anything else in the binary that
	// registered flags there (test flags, libraries) must not collide with or reject them.
	flag.CommandLine = flag.NewFlagSet(ShimName, flag.ExitOnError)
	shim.RunShim(context.Background(), manager.NewShimManager(plugins.RuntimeRuncV2))
	os.Exit(0)
}

// linkShim makes dir/containerd-shim-runc-v2 a symlink to this executable, replacing any other
// link atomically (an upgraded ketch lives at the same or another path).
func linkShim(dir string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this executable for the shim link: %w", err)
	}
	link := filepath.Join(dir, ShimName)
	if cur, err := os.Readlink(link); err == nil && cur == self {
		return nil
	}
	tmp := link + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(self, tmp); err != nil {
		return fmt.Errorf("linking the shim: %w", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("linking the shim: %w", err)
	}
	return nil
}

// prependPath puts dir first on this process' PATH, where containerd looks for the shim. It is
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
