package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ketch-k8s/ketch/internal/testutil"
	"github.com/ketch-k8s/ketch/pkg/hostcheck"
)

// TestCheckConfigOnThisHost runs ketch check-config --output json on this machine and checks
// the report against what the machine is known to be: its cgroup version (from the filesystem
// at /sys/fs/cgroup), the overlay filesystem (from /proc/filesystems), the user, a data dir
// that does not exist yet; and the exit status against the fatal findings.
func TestCheckConfigOnThisHost(t *testing.T) {
	bin := testutil.KetchBinary(t)
	dataDir := filepath.Join(t.TempDir(), "not", "yet")
	cmd := exec.Command(bin, "check-config", "--output", "json", "--data-dir", dataDir)
	// The default config file, if this machine has one, may name another data dir.
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "KETCH_CONFIG_FILE=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	if _, err := os.Stat("/etc/ketch/config.yaml"); err == nil {
		t.Skip("this machine has /etc/ketch/config.yaml, whose data dir may be another")
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	status := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		status = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var r hostcheck.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("not a JSON report (%v):\n%s\nstderr: %s", err, out, stderr.String())
	}
	var b strings.Builder
	r.WriteText(&b)
	t.Log("\n" + b.String())
	if stderr.Len() > 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
	if want := map[bool]int{true: 1, false: 0}[r.Summary.Fatal > 0]; status != want {
		t.Errorf("exit %d with %d fatal findings", status, r.Summary.Fatal)
	}
	find := func(name string) hostcheck.Finding {
		t.Helper()
		f, ok := r.Find(name)
		if !ok {
			t.Fatalf("no finding %s", name)
		}
		return f
	}

	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatal(err)
	}
	version := find("cgroup.version")
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		if version.Status != hostcheck.StatusOK || version.Message != "cgroup v2 (unified)" {
			t.Errorf("a cgroup v2 host: %+v", version)
		}
	} else if version.Status != hostcheck.StatusWarning || !strings.HasPrefix(version.Message, "cgroup v1") {
		t.Errorf("a cgroup v1 host: %+v", version)
	}
	if filesystems, _ := os.ReadFile("/proc/filesystems"); strings.Contains(string(filesystems), "\toverlay\n") {
		if f := find("kernel.overlay"); f.Status != hostcheck.StatusOK {
			t.Errorf("overlay is in /proc/filesystems: %+v", f)
		}
	}
	root := find("root")
	if (os.Geteuid() == 0) != (root.Status == hostcheck.StatusOK) {
		t.Errorf("uid %d: %+v", os.Geteuid(), root)
	}
	if f := find("disk.data-dir"); !strings.Contains(f.Message, filepath.Dir(filepath.Dir(dataDir))+" (the data dir "+dataDir+" does not exist yet)") {
		t.Errorf("disk: %+v", f)
	}
	if r.Host.Kernel == "" || len(r.Findings) < 30 || r.Summary.OK+r.Summary.Warning+r.Summary.Fatal != len(r.Findings) {
		t.Errorf("host %+v, %d findings, summary %+v", r.Host, len(r.Findings), r.Summary)
	}
}
