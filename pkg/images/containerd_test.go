package images

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"

	containerd "github.com/containerd/containerd/v2/client"
)

// startContainerd runs a real containerd daemon (the host's `containerd` binary, Debian's
// package under make test) as a child on private root, state and socket paths, and returns a
// client for it. Cleanup stops the daemon by its pid, unmounts whatever is left mounted below
// its directories and removes them. It skips the test where the binary is missing or the test
// is not root (the overlayfs snapshotter mounts).
func startContainerd(t *testing.T) *containerd.Client {
	t.Helper()
	bin, err := exec.LookPath("containerd")
	if err != nil {
		t.Skip("containerd binary not found: install Debian's containerd and runc packages (make test does) to run the import tests against a real daemon")
	}
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("importing into containerd's overlayfs snapshotter needs root; not with -short")
	}

	// Not t.TempDir(): a unix socket path must stay under 108 bytes, and cleanup order
	// (stop, unmount, remove) matters.
	dir, err := os.MkdirTemp("", "ketch-ctd-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "containerd.sock")
	// CRI is off: these tests need the image, content, snapshot and diff services only,
	// and the CRI plugin would want CNI and a streaming port. The opt plugin and temp dir
	// would otherwise write to /opt/containerd and the host's temp dir.
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
temp = %[3]q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %[4]q

[debug]
  level = "warn"

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), filepath.Join(dir, "tmp"), sock, filepath.Join(dir, "opt"))
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "containerd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Dies with the test binary if the test crashes before cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()

	var client *containerd.Client
	t.Cleanup(func() {
		if client != nil {
			client.Close()
		}
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("containerd log:\n%s", b)
			}
		}
		if err := unmountBelow(dir); err != nil {
			t.Errorf("unmount below %s: %v", dir, err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := containerd.New(sock, containerd.WithTimeout(time.Second))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = c.Version(ctx)
			cancel()
			if err == nil {
				client = c
				return client
			}
			c.Close()
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("containerd exited at start:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("containerd did not answer on %s: %v\n%s", sock, err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// unmountBelow detaches every mount at or below dir, deepest first.
func unmountBelow(dir string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return err
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		if err := syscall.Unmount(m.Mountpoint, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
		}
	}
	return nil
}
