package app

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ketch-k8s/ketch/pkg/config"
)

// TestPlanCrictl: ketch crictl passes the node's socket as both endpoints and its own config
// file, except where the user named theirs (command line, environment, config file), and checks
// for a running node only when crictl will talk to the node's socket.
func TestPlanCrictl(t *testing.T) {
	dir := t.TempDir()
	paths := config.Paths{DataDir: filepath.Join(dir, "data"), RunDir: filepath.Join(dir, "run")}
	node := "unix://" + paths.ContainerdSocket()
	ours := []string{"--runtime-endpoint", node, "--image-endpoint", node}
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	withEndpoint := write("with-endpoint.yaml", "runtime-endpoint: unix:///run/containerd/containerd.sock\ntimeout: 5\n")
	withImage := write("with-image.yaml", "image-endpoint: unix:///img.sock\n")
	// What `crictl config --set` writes: empty endpoints are none.
	empty := write("empty.yaml", "runtime-endpoint: \"\"\nimage-endpoint: \"\"\ntimeout: 7\n")

	for _, tc := range []struct {
		name       string
		args       []string
		env        map[string]string
		want       []string // crictl's arguments
		configFile string   // CRI_CONFIG_FILE to set
		dial       bool
	}{
		{name: "plain", args: []string{"ps"}, want: append(ours, "ps"), configFile: paths.CrictlConfigFile(), dial: true},
		{name: "global flags before the subcommand", args: []string{"-t", "5s", "-D", "pods", "-q"},
			want: append(ours, "-t", "5s", "-D", "pods", "-q"), configFile: paths.CrictlConfigFile(), dial: true},
		{name: "a subcommand's -i is not the image endpoint", args: []string{"exec", "-i", "-t", "abc", "sh"},
			want: append(ours, "exec", "-i", "-t", "abc", "sh"), configFile: paths.CrictlConfigFile(), dial: true},
		{name: "version flag", args: []string{"--version"}, want: append(ours, "--version"), configFile: paths.CrictlConfigFile()},
		{name: "no subcommand", args: nil, want: ours, configFile: paths.CrictlConfigFile()},
		{name: "help of a subcommand", args: []string{"ps", "--help"}, want: append(ours, "ps", "--help"), configFile: paths.CrictlConfigFile()},
		{name: "config subcommand", args: []string{"config", "--set", "debug=true"},
			want: append(ours, "config", "--set", "debug=true"), configFile: paths.CrictlConfigFile()},
		{name: "their runtime endpoint", args: []string{"-r", "unix:///x.sock", "ps"},
			want: []string{"-r", "unix:///x.sock", "ps"}, configFile: paths.CrictlConfigFile()},
		{name: "their runtime endpoint with =", args: []string{"--runtime-endpoint=unix:///x.sock", "ps"},
			want: []string{"--runtime-endpoint=unix:///x.sock", "ps"}, configFile: paths.CrictlConfigFile()},
		{name: "their image endpoint", args: []string{"--image-endpoint", "unix:///img.sock", "images"},
			want:       []string{"--runtime-endpoint", node, "--image-endpoint", "unix:///img.sock", "images"},
			configFile: paths.CrictlConfigFile(), dial: true},
		{name: "runtime endpoint from the environment", args: []string{"ps"}, env: map[string]string{"CONTAINER_RUNTIME_ENDPOINT": "unix:///x.sock"},
			want: []string{"ps"}, configFile: paths.CrictlConfigFile()},
		{name: "their config file with an endpoint", args: []string{"ps"}, env: map[string]string{"CRI_CONFIG_FILE": withEndpoint},
			want: []string{"ps"}},
		{name: "their config file on the command line", args: []string{"-c", withEndpoint, "ps"},
			want: []string{"-c", withEndpoint, "ps"}},
		{name: "their config file with an image endpoint", args: []string{"ps"}, env: map[string]string{"CRI_CONFIG_FILE": withImage},
			want: []string{"--runtime-endpoint", node, "ps"}, dial: true},
		{name: "their config file without endpoints", args: []string{"ps"}, env: map[string]string{"CRI_CONFIG_FILE": empty},
			want: append(ours, "ps"), dial: true},
		{name: "their config file missing", args: []string{"--config=/nonexistent.yaml", "ps"},
			want: append(ours, "--config=/nonexistent.yaml", "ps"), dial: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := planCrictl(tc.args, paths, func(key string) string { return tc.env[key] })
			if !slices.Equal(inv.args, tc.want) {
				t.Errorf("args %q, want %q", inv.args, tc.want)
			}
			if inv.configFile != tc.configFile {
				t.Errorf("config file %q, want %q", inv.configFile, tc.configFile)
			}
			if inv.dialNode != tc.dial {
				t.Errorf("dial the node %v, want %v", inv.dialNode, tc.dial)
			}
		})
	}
}

// TestCrictlConfigFile: ketch's crictl.yaml is created once, with no endpoints, and what the
// user wrote to it is kept.
func TestCrictlConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent", "etc", "crictl.yaml")
	if err := ensureCrictlConfig(path); err != nil {
		t.Fatal(err)
	}
	if e := crictlConfigEndpoints(path); len(e) != 0 {
		t.Errorf("new file has endpoints %v", e)
	}
	mine := "timeout: 9\n"
	if err := os.WriteFile(path, []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ensureCrictlConfig(path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != mine {
		t.Errorf("the user's file was rewritten: %q", b)
	}
}

// TestCrictlNoNode: aimed at a run dir where no node runs, ketch crictl says so, names the
// socket and says what to do, before it unpacks or runs anything.
func TestCrictlNoNode(t *testing.T) {
	dir := t.TempDir()
	runDir := filepath.Join(dir, "run")
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("data-dir: "+filepath.Join(dir, "data")+"\nrun-dir: "+runDir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KETCH_CONFIG_FILE", cfg)
	t.Setenv("CONTAINER_RUNTIME_ENDPOINT", "")
	t.Setenv("CRI_CONFIG_FILE", "")
	err := runCrictl([]string{"ps"})
	if err == nil {
		t.Fatal("ketch crictl ps with no node: no error")
	}
	for _, want := range []string{"no node is running on run dir " + runDir, filepath.Join(runDir, "containerd", "containerd.sock"),
		"start the node", "run-dir in " + cfg} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Error("the data dir was written to")
	}
}
