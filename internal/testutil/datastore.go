package testutil

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/ketch-k8s/ketch/internal/harness"
)

// Datastore is a `ketch datastore` process started by a test.
type Datastore struct {
	t        testing.TB
	Bin      string
	DataDir  string
	Endpoint string // http://127.0.0.1:PORT
	Args     []string
	LogPath  string
	proc     *harness.Process
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
	cmd := exec.Command(d.Bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if d.proc, err = harness.Start(cmd, syscall.SIGKILL); err != nil {
		d.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := harness.WaitEtcd(ctx, d.Endpoint, d.proc.Done()); err != nil {
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
	if d.proc == nil {
		return
	}
	if _, err := d.proc.Stop(sig, 30*time.Second); err != nil {
		d.t.Errorf("datastore: %v", err)
	}
}

// ExitCode returns the exit code after the process ended, or -1 while it runs.
func (d *Datastore) ExitCode() int { return d.proc.ExitCode() }

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

// FreeLoopbackAddr returns a 127.0.0.1:PORT that was free a moment ago.
func FreeLoopbackAddr(t testing.TB) string {
	t.Helper()
	addr, err := harness.FreeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
