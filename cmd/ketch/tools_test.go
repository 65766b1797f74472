package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ketch-k8s/ketch/internal/testutil"
)

// TestToolsReadTheConfigFile: ketch token, images, kubectl and ctr take the data dir, run dir
// and admin kubeconfig from the same config file as the node, as a user who set them there
// expects; their own flags still win.
func TestToolsReadTheConfigFile(t *testing.T) {
	bin := testutil.KetchBinary(t)
	dir := t.TempDir()
	dataDir, runDir := filepath.Join(dir, "data"), filepath.Join(dir, "run")
	kubeconfig := filepath.Join(dir, "admin.yaml")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://192.0.2.77:7443"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
users: [{name: u, user: {}}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "config.yaml")
	// A node's config file: keys the tools do not use (cluster-cidr) are fine.
	if err := os.WriteFile(config, []byte("data-dir: "+dataDir+"\nrun-dir: "+runDir+"\nwrite-kubeconfig: "+kubeconfig+"\ncluster-cidr: 10.42.0.0/16\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(runDir, "containerd", "containerd.sock")
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"token list", []string{"token", "list", "--config", config}, nil, "no server in " + dataDir},
		{"token list, the flag wins", []string{"token", "list", "--config", config, "--data-dir", filepath.Join(dir, "other")}, nil, "no server in " + filepath.Join(dir, "other")},
		{"images list", []string{"images", "list", "--config", config}, nil, socket},
		{"images list, KETCH_CONFIG_FILE", []string{"images", "list"}, []string{"KETCH_CONFIG_FILE=" + config}, socket},
		{"kubectl", []string{"kubectl", "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"}, []string{"KETCH_CONFIG_FILE=" + config, "KUBECONFIG="}, "https://192.0.2.77:7443"},
		{"ctr", []string{"ctr", "version"}, []string{"KETCH_CONFIG_FILE=" + config, "CONTAINERD_ADDRESS="}, socket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append(os.Environ(), tc.env...)
			out, _ := cmd.CombinedOutput()
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("ketch %s: output lacks %q:\n%s", strings.Join(tc.args, " "), tc.want, out)
			}
		})
	}
}
