package testutil

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Datastore is a `ketch datastore` process started by a test.
type Datastore struct {
	t        testing.TB
	Bin      string
	DataDir  string
	Endpoint string // http://127.0.0.1:PORT
	Args     []string
	LogPath  string
	cmd      *exec.Cmd
	exited   chan struct{}
}

// StartDatastore starts `ketch datastore` on dataDir (a new temporary dir when empty) listening
// on a free loopback port, waits until it answers Status, and stops it when the test ends.
// extraArgs are appended to the command line.
func StartDatastore(t testing.TB, dataDir string, extraArgs ...string) *Datastore {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	d := &Datastore{t: t, Bin: KetchBinary(t), DataDir: dataDir, Endpoint: "http://" + FreeLoopbackAddr(t), Args: extraArgs}
	d.LogPath = filepath.Join(t.TempDir(), "datastore.log")
	d.Start()
	t.Cleanup(d.Kill)
	return d
}

// Start (re)starts the process on the same data dir and endpoint and waits until it is ready.
func (d *Datastore) Start() {
	d.t.Helper()
	logf, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	defer logf.Close()
	args := append([]string{"datastore", "--data-dir", d.DataDir, "--listen-client-urls", d.Endpoint}, d.Args...)
	d.cmd = exec.Command(d.Bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		d.t.Fatalf("starting %s: %v", d.Bin, err)
	}
	d.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { cmd.Wait(); close(exited) }(d.cmd, d.exited)
	if err := WaitForEtcd(d.Endpoint, 30*time.Second, d.exited); err != nil {
		log, _ := os.ReadFile(d.LogPath)
		d.Kill()
		d.t.Fatalf("datastore did not become ready: %v\nlog:\n%s", err, log)
	}
}

// Kill stops the process with SIGKILL and waits for it to exit. It is safe to call twice.
func (d *Datastore) Kill() { d.signal(syscall.SIGKILL) }

// Stop stops the process with SIGTERM and waits for it to exit.
func (d *Datastore) Stop() { d.signal(syscall.SIGTERM) }

func (d *Datastore) signal(sig syscall.Signal) {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	select {
	case <-d.exited:
		return
	default:
	}
	d.cmd.Process.Signal(sig)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
		d.t.Errorf("datastore pid %d did not exit within 30s of %v", d.cmd.Process.Pid, sig)
	}
}

// PID returns the process ID of the running process.
func (d *Datastore) PID() int { return d.cmd.Process.Pid }

// ExitCode returns the exit code after the process ended, or -1 while it runs.
func (d *Datastore) ExitCode() int {
	select {
	case <-d.exited:
		return d.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// Client returns an etcd client for the process, closed when the test ends.
func (d *Datastore) Client() *clientv3.Client {
	d.t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{d.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { c.Close() })
	return c
}

// WaitForEtcd waits until endpoint accepts connections and answers Status, the timeout passes,
// or exited closes. It dials before creating a client because gRPC backs off for a second after
// a refused connection, which would add that second to every start.
func WaitForEtcd(endpoint string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	network, address := "tcp", strings.TrimPrefix(endpoint, "http://")
	if strings.HasPrefix(endpoint, "unix://") {
		network, address = "unix", strings.TrimPrefix(endpoint, "unix://")
	}
	for {
		conn, err := net.DialTimeout(network, address, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("process exited: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no connection after %v: %w", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer c.Close()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = c.Status(ctx, endpoint)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("process exited: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer after %v: %w", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FreeLoopbackAddr returns a 127.0.0.1:PORT that was free a moment ago.
func FreeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
