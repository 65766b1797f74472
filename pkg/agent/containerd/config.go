package containerd

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/version"
	"github.com/pelletier/go-toml/v2"
)

// configVersion is the config format of the containerd linked in (4 for 2.3: server
// addresses are plugin settings); an older one would be migrated at every start.
const configVersion = version.ConfigVersion

// disabledPlugins are registered by packages ketch needs but must not run in ketch's process.
var disabledPlugins = []string{
	// Registers gRPC server metrics in Prometheus' process-wide default registry at every start:
	// a second Start in one process would panic, and it collides with any other gRPC server in
	// the process that exports the same metric names. Nothing scrapes containerd here.
	"io.containerd.metrics.v1.grpc-prometheus",
}

// configTOML is containerd's configuration for a ketch node, as the TOML tree written to
// config.toml. Only what differs from containerd's defaults, or what ketch relies on, is set.
func configTOML(cfg Config, p Paths) map[string]any {
	return map[string]any{
		"version":          configVersion,
		"root":             p.Root,
		"state":            p.State,
		"disabled_plugins": disabledPlugins,
		"timeouts": map[string]any{
			// bolt.Open waits forever by default when another containerd holds the database
			// (a second ketch on the same data dir): fail instead.
			"io.containerd.timeout.bolt.open": "10s",
		},
		"plugins": map[string]any{
			"io.containerd.server.v1.grpc": map[string]any{
				"address": p.Socket,
			},
			"io.containerd.server.v1.ttrpc": map[string]any{
				"address": p.Socket + ".ttrpc",
			},
			// Shim sockets default to /run/containerd/s, which a host containerd or another
			// ketch node on this machine would share.
			"io.containerd.shim.v1.manager": map[string]any{
				"socket_dir": p.ShimSocket,
			},
			"io.containerd.cri.v1.images": map[string]any{
				"snapshotter": "overlayfs",
				"pinned_images": map[string]any{
					"sandbox": cfg.SandboxImage,
				},
				"registry": map[string]any{
					// Registry mirrors and credentials, if a user wants any, live with the node's
					// other configuration rather than in /etc/containerd.
					"config_path": p.CertsDir,
				},
			},
			"io.containerd.cri.v1.runtime": map[string]any{
				"restrict_oom_score_adj": cfg.RestrictOOMScoreAdj,
				// Pods may bind ports below 1024 and ping without extra capabilities, as with
				// containerd's own defaults and k3s.
				"enable_unprivileged_ports": true,
				"enable_unprivileged_icmp":  true,
				// Hosts without the hugetlb controller (like the cgroup v1 build machines) must
				// still run pods.
				"tolerate_missing_hugetlb_controller": true,
				// Pod network namespaces live under this node's run dir, not /var/run/netns:
				// several nodes can share a machine, and cleanup finds a node's own.
				"netns_mounts_under_state_dir": true,
				"containerd": map[string]any{
					"default_runtime_name": "runc",
					"runtimes": map[string]any{
						"runc": map[string]any{
							"runtime_type": "io.containerd.runc.v2",
							// The bundle's shim by its path, whatever else is on PATH (the
							// bundle's bin dir is first there too, for the tasks containerd
							// reloads after a restart: see the package comment).
							"runtime_path": p.Shim,
							"sandboxer":    "podsandbox",
							"options": map[string]any{
								"BinaryName":    filepath.Join(cfg.BinDir, "runc"),
								"Root":          p.RuncRoot,
								"SystemdCgroup": cfg.SystemdCgroup,
							},
						},
					},
				},
				"cni": map[string]any{
					"bin_dirs":     []string{p.CNIBinDir},
					"conf_dir":     p.CNIConfDir,
					"max_conf_num": 1,
					// containerd sets a pod's lo up itself instead of running the loopback
					// plugin: one program less to start per pod start and stop.
					"use_internal_loopback": true,
				},
			},
		},
	}
}

// writeConfig writes the config file atomically, with a header saying who owns it.
func writeConfig(path string, tree map[string]any) error {
	var buf bytes.Buffer
	buf.WriteString("# Written by ketch at every start from its own settings; edits are overwritten.\n\n")
	enc := toml.NewEncoder(&buf)
	enc.SetIndentTables(true)
	if err := enc.Encode(tree); err != nil {
		return fmt.Errorf("containerd: encoding config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("containerd: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("containerd: writing %s: %w", path, err)
	}
	return nil
}
