package containerd

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/log"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"
	"github.com/sirupsen/logrus"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/config"
)

// TestConfig writes the config file, loads it as containerd does and decodes every plugin's
// section into that plugin's own config type, strictly: a misspelt or misplaced key would be
// ignored by containerd with a warning, and fails here.
func TestConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Paths: config.Paths{DataDir: dir, RunDir: "/run/ketch"}, BinDir: filepath.Join(dir, "bin"), SandboxImage: "localhost/ketch/pause:x", RestrictOOMScoreAdj: true, SystemdCgroup: true}
	p := PathsFor(cfg)
	if err := writeConfig(p.ConfigFile, configTOML(cfg, p)); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(p.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s:\n%s", p.ConfigFile, text)

	var logs bytes.Buffer
	logrus.SetOutput(&logs)
	defer logrus.SetOutput(os.Stderr)
	ctx := context.Background()
	config, err := loadConfig(ctx, p.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	if config.Root != p.Root || config.State != p.State || config.Version != configVersion {
		t.Errorf("root %q state %q version %d", config.Root, config.State, config.Version)
	}
	decoded := map[string]any{}
	for _, r := range registry.Graph(func(*plugin.Registration) bool { return false }) {
		if r.Config == nil {
			continue
		}
		v, err := config.Decode(log.WithLogger(ctx, log.L), r.URI(), r.Config)
		if err != nil {
			t.Errorf("%s: %v", r.URI(), err)
		}
		decoded[r.URI()] = v
	}
	for id := range config.Plugins {
		if _, ok := decoded[id]; !ok {
			t.Errorf("config has a section for %s, which is not a plugin with a config", id)
		}
	}
	if strings.Contains(logs.String(), "unknown key") || strings.Contains(logs.String(), "migrated") {
		t.Errorf("containerd complained:\n%s", logs.String())
	}

	// Spot-check the values through the plugins' own types (their JSON names).
	check := func(id string, want map[string]any) {
		t.Helper()
		b, err := json.Marshal(decoded[id])
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		for path, w := range want {
			var v any = got
			for _, k := range strings.Split(path, ".") {
				m, _ := v.(map[string]any)
				v = m[k]
			}
			if gb, _ := json.Marshal(v); string(gb) != mustJSON(t, w) {
				t.Errorf("%s: %s = %s, want %s", id, path, gb, mustJSON(t, w))
			}
		}
	}
	check("io.containerd.cri.v1.runtime", map[string]any{
		"restrictOOMScoreAdj":                            true,
		"enableUnprivilegedPorts":                        true,
		"enableUnprivilegedICMP":                         true,
		"cni.binDirs":                                    []string{cfg.BinDir},
		"cni.confDir":                                    p.CNIConfDir,
		"cni.useInternalLoopback":                        true,
		"containerd.defaultRuntimeName":                  "runc",
		"containerd.runtimes.runc.runtimeType":           "io.containerd.runc.v2",
		"containerd.runtimes.runc.runtimePath":           filepath.Join(cfg.BinDir, ShimName),
		"containerd.runtimes.runc.options.BinaryName":    filepath.Join(cfg.BinDir, "runc"),
		"containerd.runtimes.runc.options.SystemdCgroup": true,
		"containerd.runtimes.runc.options.Root":          p.RuncRoot,
		"tolerateMissingHugetlbController":               true,
		"netnsMountsUnderStateDir":                       true,
	})
	check("io.containerd.cri.v1.images", map[string]any{
		"snapshotter":           "overlayfs",
		"pinned_images.sandbox": cfg.SandboxImage,
		"registry.configPath":   p.CertsDir,
	})
	if len(config.DisabledPlugins) != len(disabledPlugins) {
		t.Errorf("disabled plugins %v", config.DisabledPlugins)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStartRejects(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	for name, cfg := range map[string]Config{
		"no data dir":    {Paths: config.Paths{RunDir: "/run/k"}, BinDir: bin, SandboxImage: "x"},
		"no run dir":     {Paths: config.Paths{DataDir: dir}, BinDir: bin, SandboxImage: "x"},
		"no bin dir":     {Paths: config.Paths{DataDir: dir, RunDir: "/run/k"}, SandboxImage: "x"},
		"no pause image": {Paths: config.Paths{DataDir: dir, RunDir: "/run/k"}, BinDir: bin},
		"long run dir":   {Paths: config.Paths{DataDir: dir, RunDir: "/run/" + strings.Repeat("x", 40)}, BinDir: bin, SandboxImage: "x"},
		"no runc in bin": {Paths: config.Paths{DataDir: dir, RunDir: "/run/k"}, BinDir: bin, SandboxImage: "x"},
	} {
		t.Run(name, func(t *testing.T) {
			if c, err := Start(context.Background(), cfg); err == nil {
				c.Stop()
				t.Fatal("started")
			} else {
				t.Log(err)
			}
		})
	}
}

// TestPreserveKlog: the CRI plugin's klog reconfiguration is undone.
func TestPreserveKlog(t *testing.T) {
	restore := preserveKlog()
	fs := newKlogFlags()
	before := fs.Lookup("v").Value.String()
	fs.Set("v", "7")
	fs.Set("logtostderr", "false")
	if !klog.V(7).Enabled() {
		t.Fatal("could not change klog's verbosity")
	}
	restore()
	if got := fs.Lookup("v").Value.String(); got != before || klog.V(7).Enabled() {
		t.Errorf("v = %s after restore, want %s", got, before)
	}
}

func newKlogFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	return fs
}
