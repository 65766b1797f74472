// Package dockerd runs a private Docker engine (Debian's docker.io) for the tests and the
// benchmarks that need one: its own socket, exec root and state, no default bridge and no
// iptables rules, so that the machine stays as it was and other engines are not disturbed.
package dockerd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/internal/nodeimage"
)

// Binaries are Debian's docker.io: the engine and a client of its API version (a newer client
// earlier on PATH would also do, but this one is sure to match).
const (
	Dockerd = "/usr/sbin/dockerd"
	Docker  = "/usr/bin/docker"
)

// Privileges are what docker run --privileged stands for, less what this machine cannot grant
// (--privileged asks for CAP_SYS_RESOURCE, which its processes lack, and fails: ENVIRONMENT.md):
// every other capability, no seccomp or AppArmor profile, /proc and /sys unmasked, access to
// every device, and a cgroup namespace of the container's own. /sys and the cgroup hierarchies
// are still mounted read-only; what runs in the container remounts them.
var Privileges = []string{
	"--cap-add=ALL", "--cap-drop=SYS_RESOURCE",
	"--security-opt=seccomp=unconfined", "--security-opt=apparmor=unconfined", "--security-opt=systempaths=unconfined",
	"--device-cgroup-rule=a *:* rwm", "--cgroupns=private",
}

// Engine is a running private dockerd.
type Engine struct {
	socket   string
	execRoot string
	LogFile  string
	proc     *harness.Process
}

// Start starts an engine whose images and volumes live in dataRoot (kept between runs, like a
// cache) and whose log goes to logFile, and waits until it answers.
func Start(ctx context.Context, dataRoot, logFile string) (*Engine, error) {
	for _, bin := range []string{Dockerd, Docker} {
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("%s is missing: apt-get install docker.io (scripts/install-deps.sh does)", bin)
		}
	}
	// Short paths: the engine's containerd puts sockets below its exec root.
	execRoot, err := os.MkdirTemp("/run", "ktd-")
	if err != nil {
		return nil, err
	}
	e := &Engine{socket: filepath.Join(execRoot, "docker.sock"), execRoot: execRoot, LogFile: logFile}
	log, err := os.Create(logFile)
	if err != nil {
		os.RemoveAll(execRoot)
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(Dockerd,
		"--data-root", dataRoot,
		"--exec-root", execRoot,
		"--pidfile", filepath.Join(execRoot, "dockerd.pid"),
		"--host", e.Host(),
		// No default bridge, no iptables rules, no sysctl changes: the host stays as it was;
		// containers talk over networks the caller makes, and need no way out.
		"--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false",
		// Every container gets its own cgroup namespace, as on a cgroup v2 host, also those
		// docker-compose makes (it has no option for it).
		"--default-cgroupns-mode=private",
		"--storage-driver=overlay2")
	cmd.Stdout, cmd.Stderr = log, log
	if e.proc, err = harness.Start(cmd, syscall.SIGTERM); err != nil {
		os.RemoveAll(execRoot)
		return nil, err
	}
	for {
		if _, err := e.Run(ctx, "version", "--format", "{{.Server.Version}}"); err == nil {
			return e, nil
		}
		select {
		case <-ctx.Done():
		case <-e.proc.Done():
		case <-time.After(200 * time.Millisecond):
			continue
		}
		e.Stop()
		return nil, fmt.Errorf("dockerd did not come up (log in %s): %w", logFile, context.Cause(ctx))
	}
}

// Stop stops the engine (its containers with it) and removes its exec root.
func (e *Engine) Stop() error {
	_, err := e.proc.Stop(syscall.SIGTERM, 30*time.Second)
	os.RemoveAll(e.execRoot)
	return err
}

// Host is the engine's address, for DOCKER_HOST or docker --host.
func (e *Engine) Host() string { return "unix://" + e.socket }

// Docker is the docker client command line for the engine, for scripts that take it in $DOCKER.
func (e *Engine) Docker() string { return Docker + " --host " + e.Host() }

// Command is a docker client command against the engine.
func (e *Engine) Command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, Docker, append([]string{"--host", e.Host()}, args...)...)
}

// Run runs a docker command against the engine and returns its standard output.
func (e *Engine) Run(ctx context.Context, args ...string) (string, error) {
	cmd := e.Command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// BuildNodeImage builds the node image for this machine's architecture from ketchBin, as make
// image does: the context from internal/nodeimage, then dockerfile (the repository's) against it.
func (e *Engine) BuildNodeImage(ctx context.Context, ketchBin, dockerfile, tag string) error {
	dir, err := os.MkdirTemp("", "ketch-node-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := nodeimage.Assemble(nodeimage.Options{Ketch: ketchBin, Arch: runtime.GOARCH, Sysroot: "/", Out: dir}); err != nil {
		return fmt.Errorf("assembling the node image: %w", err)
	}
	_, err = e.Run(ctx, "build", "--quiet", "--tag", tag, "--file", dockerfile, dir)
	return err
}
