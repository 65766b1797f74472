package app

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/ketch-k8s/ketch/pkg/hostcheck"
)

// runCheckConfig runs ketch check-config with args on a report made by findings, and returns
// what it printed, its exit status and the data dir the report was asked for.
func runCheckConfig(t *testing.T, findings []hostcheck.Finding, args ...string) (stdout, stderr string, status int, dataDir string) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &cli.App{
		Name: "ketch", Writer: &out, ErrWriter: &errOut,
		Commands: []*cli.Command{checkConfigCommand(func(d string) *hostcheck.Report {
			dataDir = d
			return hostcheck.NewReport(hostcheck.HostInfo{Kernel: "6.1.0", OS: "Test OS"}, findings)
		})},
	}
	// No config file unless the test names one.
	t.Setenv("KETCH_CONFIG_FILE", "")
	os.Unsetenv("KETCH_CONFIG_FILE")
	err := app.Run(append([]string{"ketch", "check-config"}, args...))
	status = exitStatus(err, &errOut)
	return out.String(), errOut.String(), status, dataDir
}

var (
	okFinding      = hostcheck.Finding{Group: "system", Name: "root", Status: hostcheck.StatusOK, Message: "running as root"}
	warningFinding = hostcheck.Finding{Group: "resources", Name: "swap", Status: hostcheck.StatusWarning, Message: "swap is on", Fix: "swapoff -a"}
	fatalFinding   = hostcheck.Finding{Group: "cgroups", Name: "cgroup.memory", Status: hostcheck.StatusFatal, Message: "the memory cgroup controller: disabled", Fix: "add cgroup_enable=memory\nthen reboot"}
)

// TestCheckConfigExitStatus: 1 when a finding is fatal, 0 with warnings only; the report is
// printed either way, and nothing else.
func TestCheckConfigExitStatus(t *testing.T) {
	for _, tc := range []struct {
		name     string
		findings []hostcheck.Finding
		status   int
	}{
		{"ok", []hostcheck.Finding{okFinding}, 0},
		{"warning", []hostcheck.Finding{okFinding, warningFinding}, 0},
		{"fatal", []hostcheck.Finding{okFinding, warningFinding, fatalFinding}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, output := range []string{"text", "json"} {
				stdout, stderr, status, _ := runCheckConfig(t, tc.findings, "--output", output)
				if status != tc.status || stderr != "" {
					t.Errorf("--output %s: exit %d, stderr %q; want %d and nothing", output, status, stderr, tc.status)
				}
				if !strings.Contains(stdout, "running as root") {
					t.Errorf("--output %s: no report:\n%s", output, stdout)
				}
			}
		})
	}
}

// TestCheckConfigJSON: the JSON output's shape is stable: host, findings with group, name,
// status, message and fix (always there), and a summary.
func TestCheckConfigJSON(t *testing.T) {
	stdout, _, _, _ := runCheckConfig(t, []hostcheck.Finding{okFinding, warningFinding, fatalFinding}, "-o", "json")
	var doc map[string]any
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	keys := func(m map[string]any) []string {
		var k []string
		for key := range m {
			k = append(k, key)
		}
		slices.Sort(k)
		return k
	}
	if got := keys(doc); !slices.Equal(got, []string{"findings", "host", "summary"}) {
		t.Errorf("top-level keys %q", got)
	}
	findings := doc["findings"].([]any)
	if len(findings) != 3 {
		t.Fatalf("%d findings", len(findings))
	}
	for _, f := range findings {
		if got := keys(f.(map[string]any)); !slices.Equal(got, []string{"fix", "group", "message", "name", "status"}) {
			t.Errorf("finding keys %q", got)
		}
	}
	ok := findings[0].(map[string]any)
	if ok["name"] != "root" || ok["status"] != "ok" || ok["fix"] != "" || ok["group"] != "system" {
		t.Errorf("ok finding %v", ok)
	}
	// In the order of the groups: system, cgroups, resources.
	fatal := findings[1].(map[string]any)
	if fatal["status"] != "fatal" || fatal["fix"] != "add cgroup_enable=memory\nthen reboot" {
		t.Errorf("fatal finding %v", fatal)
	}
	if got := keys(doc["summary"].(map[string]any)); !slices.Equal(got, []string{"fatal", "ok", "status", "warning"}) {
		t.Errorf("summary keys %q", got)
	}
	if got := keys(doc["host"].(map[string]any)); !slices.Equal(got, []string{"kernel", "os"}) {
		t.Errorf("host keys %q", got)
	}
}

func TestCheckConfigText(t *testing.T) {
	stdout, _, _, _ := runCheckConfig(t, []hostcheck.Finding{okFinding, fatalFinding})
	for _, want := range []string{
		"Host: Test OS, kernel 6.1.0\n",
		"\nSystem\n  ok       root           running as root\n",
		"\n  fatal    cgroup.memory  the memory cgroup controller: disabled\n" + strings.Repeat(" ", 26) + "fix: add cgroup_enable=memory\n" + strings.Repeat(" ", 31) + "then reboot\n",
		"\n1 ok, 0 warnings, 1 fatal: this host cannot run a ketch node until the fatal findings are fixed\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

// TestCheckConfigBadInput: an --output other than text or json, or an argument, is refused
// with a clear message before anything is checked.
func TestCheckConfigBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--output", "yaml"}, `ketch: --output "yaml": must be text or json`},
		{[]string{"-o", "JSON"}, `ketch: --output "JSON": must be text or json`},
		{[]string{"extra"}, `ketch: check-config takes no arguments, got ["extra"]`},
	} {
		stdout, stderr, status, dataDir := runCheckConfig(t, []hostcheck.Finding{okFinding}, tc.args...)
		if status != 1 || !strings.Contains(stderr, tc.want) || stdout != "" || dataDir != "" {
			t.Errorf("%q: exit %d, stderr %q, stdout %q, checked %q; want 1 and %q", tc.args, status, stderr, stdout, dataDir, tc.want)
		}
	}
}

// TestCheckConfigDataDir: the data dir is the default, the config file's, or the flag's.
func TestCheckConfigDataDir(t *testing.T) {
	if _, _, _, d := runCheckConfig(t, nil); d != "/var/lib/ketch" {
		t.Errorf("default data dir %q", d)
	}
	config := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(config, []byte("data-dir: /srv/ketch\ncluster-cidr: 10.42.0.0/16\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, _, d := runCheckConfig(t, nil, "--config", config); d != "/srv/ketch" {
		t.Errorf("data dir from the config file: %q (%s)", d, stderr)
	}
	if _, _, _, d := runCheckConfig(t, nil, "--config", config, "--data-dir", "/data"); d != "/data" {
		t.Errorf("the flag does not win: %q", d)
	}
}
