// Package dockertest runs containers for tests that need a whole host of their own: a private
// Docker engine (Debian's docker.io) that the test starts and stops, and Debian root file systems
// made with debootstrap, with systemd or OpenRC as PID 1. Nothing comes from a registry.
//
// The engine is the test's own: its socket, state and network are under names no other Docker
// uses, it never touches iptables (--iptables=false), and a test's cleanup removes exactly the
// containers and networks it made, then stops the engine. Its data root and the root file
// systems are kept between runs under CacheDir, like Go's build cache: making them costs
// minutes, and they hold nothing of a test's.
package dockertest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ketch-k8s/ketch/internal/dockerd"
)

// CacheDir keeps the engine's images and the root file systems between test runs; remove it to
// start afresh.
const CacheDir = "/var/tmp/ketch-test-cache"

// Engine is a private dockerd (internal/dockerd) that a test started.
type Engine struct {
	*dockerd.Engine
}

// Start starts a private engine; t's cleanup stops it after the containers and networks the test
// made are gone.
func Start(t testing.TB) *Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logFile := filepath.Join(t.TempDir(), "dockerd.log")
	d, err := dockerd.Start(ctx, filepath.Join(CacheDir, "docker"), logFile)
	if err != nil {
		b, _ := os.ReadFile(logFile)
		t.Fatalf("%v\n%s", err, tail(b, 3000))
	}
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			if b, err := os.ReadFile(logFile); err == nil {
				t.Logf("dockerd log (last 3000 bytes):\n%s", tail(b, 3000))
			}
		}
	})
	return &Engine{d}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Run runs a docker command against the engine and returns its standard output.
func (e *Engine) Run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return e.Engine.Run(ctx, args...)
}

// Logs is a container's output, standard output and standard error together.
func (e *Engine) Logs(name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := e.Command(ctx, "logs", name).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(docker logs %s: %v) %s", name, err, out)
	}
	return string(out)
}

// NodeLog is what a failed test needs from a ketch node container: how the container ended,
// and the end of the components' log file (/var/lib/ketch/logs/ketch.log), which docker logs
// does not show. It reads a stopped container too.
func (e *Engine) NodeLog(name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	state, err := e.Engine.Run(ctx, "inspect", "--format", "running={{.State.Running}} exit={{.State.ExitCode}} oomkilled={{.State.OOMKilled}} error={{.State.Error}}", name)
	if err != nil {
		state = err.Error()
	}
	out, err := e.Command(ctx, "cp", name+":/var/lib/ketch/logs/ketch.log", "-").Output()
	if err != nil {
		return fmt.Sprintf("%s\n(docker cp of the log file: %v)", strings.TrimSpace(state), err)
	}
	// docker cp to - writes a tar archive of the one file.
	archive := tar.NewReader(bytes.NewReader(out))
	if _, err := archive.Next(); err != nil {
		return fmt.Sprintf("%s\n(reading the log file: %v)", strings.TrimSpace(state), err)
	}
	// The errors (klog's E and F lines, Go's panics) and the last lines: a component that
	// exits the process logs why, but the others go on logging after it.
	var errs, lines []string
	sc := bufio.NewScanner(archive)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		lines = append(lines, l)
		if len(l) > 1 && (l[0] == 'E' || l[0] == 'F') && l[1] >= '0' && l[1] <= '9' || strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			errs = append(errs, l)
		}
	}
	return fmt.Sprintf("%s\nthe last errors in its log file:\n%s\nthe last lines of its log file:\n%s", strings.TrimSpace(state),
		strings.Join(errs[max(0, len(errs)-40):], "\n"), strings.Join(lines[max(0, len(lines)-40):], "\n"))
}

// Must is Run that fails t on an error.
func (e *Engine) Must(t testing.TB, args ...string) string {
	t.Helper()
	out, err := e.Run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Network makes a bridge network with a fixed subnet (for example "10.211.0.0/24"), removed at
// t's cleanup.
func (e *Engine) Network(t testing.TB, name, subnet string) {
	t.Helper()
	e.Run("network", "rm", name) // left by a killed run
	e.Must(t, "network", "create", "--driver", "bridge", "--subnet", subnet,
		"--opt", "com.docker.network.bridge.name="+name, name)
	t.Cleanup(func() {
		if _, err := e.Run("network", "rm", name); err != nil {
			t.Errorf("removing network %s: %v", name, err)
		}
	})
}

// bootScript is the containers' entry point: Docker mounts /sys and the cgroup hierarchies
// read-only in a container that is not --privileged (and --privileged cannot be used here: it
// asks for capabilities this machine's processes lack, see ENVIRONMENT.md), but an init system
// and a node need them writable. The container has CAP_SYS_ADMIN, so it remounts them, then
// becomes the init system.
const bootScript = `set -e
mount -o remount,rw /sys
for m in $(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts); do
  mount -o remount,bind,rw "$m"
done
exec "$@"`

// Container is a running container with an init system (or a shell) as PID 1.
type Container struct {
	e    *Engine
	Name string
}

// RunOptions are what a host container needs besides its image.
type RunOptions struct {
	Network string
	// Init is PID 1: /sbin/init (systemd), /sbin/openrc-init, or a command that waits.
	Init []string
	// Volumes are docker -v specifications (host:container[:ro]).
	Volumes []string
}

// RunHost starts a container that is a whole host for a node: all the capabilities this machine
// has, no seccomp or AppArmor profile, every device, its own cgroup namespace, tmpfs /run and
// /tmp, and /dev/kmsg (the kubelet reads it). t's cleanup removes it.
func (e *Engine) RunHost(t testing.TB, name, image string, o RunOptions) *Container {
	t.Helper()
	e.Run("rm", "--force", "--volumes", name) // left by a killed run
	args := append([]string{"run", "--detach", "--name", name, "--hostname", name}, dockerd.Privileges...)
	args = append(args, "--device", "/dev/kmsg",
		"--tmpfs", "/run:exec", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
		"--env", "container=docker",
		"--entrypoint", "/bin/sh")
	if o.Network != "" {
		args = append(args, "--network", o.Network)
	}
	for _, v := range o.Volumes {
		args = append(args, "--volume", v)
	}
	args = append(args, "--volume", resolvConf(t)+":/etc/resolv.conf:ro")
	args = append(args, image, "-c", bootScript, "boot")
	args = append(args, o.Init...)
	e.Must(t, args...)
	c := &Container{e: e, Name: name}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("container %s output:\n%s", name, tail([]byte(e.Logs(name)), 5000))
		}
		if _, err := e.Run("rm", "--force", "--volumes", name); err != nil {
			t.Errorf("removing container %s: %v", name, err)
		}
	})
	return c
}

// resolvConf is a resolv.conf with the machine's own upstream nameservers. Docker gives a
// container on a user-defined network only its embedded resolver at 127.0.0.11, which a pod
// cannot reach (it is the container's loopback, not the pod's): CoreDNS would forward to itself.
// A real host has reachable nameservers, and so does a test host.
func resolvConf(t testing.TB) string {
	t.Helper()
	var servers []string
	for _, file := range []string{"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "nameserver" {
				if ip := net.ParseIP(f[1]); ip != nil && !ip.IsLoopback() && !slices.Contains(servers, f[1]) {
					servers = append(servers, f[1])
				}
			}
		}
	}
	if len(servers) == 0 {
		t.Fatal("this machine has no nameserver that is not a loopback address (in /etc/resolv.conf or /run/systemd/resolve/resolv.conf) to give the test hosts")
	}
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte("nameserver "+strings.Join(servers, "\nnameserver ")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Exec runs a shell command in the container with the given environment (KEY=VALUE) and returns
// its combined output.
func (c *Container) Exec(env []string, script string) (string, error) {
	args := []string{"exec"}
	for _, kv := range env {
		args = append(args, "--env", kv)
	}
	args = append(args, c.Name, "sh", "-c", script)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	out, err := c.e.Command(ctx, args...).CombinedOutput()
	return string(out), err
}

// Must is Exec that fails t on an error.
func (c *Container) Must(t testing.TB, env []string, script string) string {
	t.Helper()
	out, err := c.Exec(env, script)
	if err != nil {
		t.Fatalf("in %s: %s: %v\n%s", c.Name, script, err, out)
	}
	return out
}

// IP is the container's address on its network.
func (c *Container) IP(t testing.TB) string {
	t.Helper()
	out := strings.TrimSpace(c.e.Must(t, "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", c.Name))
	ip := net.ParseIP(strings.Fields(out + " ")[0])
	if ip == nil {
		t.Fatalf("container %s has no address: %q", c.Name, out)
	}
	return ip.String()
}

// WaitFor runs script in the container until it succeeds or timeout passes.
func (c *Container) WaitFor(t testing.TB, what string, timeout time.Duration, script string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, err := c.Exec(nil, script)
		if err == nil {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("in %s: %s not within %s: %v\n%s", c.Name, what, timeout, err, out)
		}
		time.Sleep(time.Second)
	}
}

// ExitCode is the exit status of a failed Exec, or -1.
func ExitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}
