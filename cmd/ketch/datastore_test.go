package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ketch-k8s/ketch/internal/testutil"
	"github.com/ketch-k8s/ketch/pkg/datastore"
	"github.com/ketch-k8s/ketch/pkg/datastore/mvcc"
)

func TestMain(m *testing.M) { testutil.Main(m) }

var (
	etcdctlOnce sync.Once
	etcdctlPath string
	etcdctlErr  error
)

// etcdctl builds the real etcdctl at the version go.mod pins (a tool dependency).
func etcdctl(t *testing.T) string {
	t.Helper()
	etcdctlOnce.Do(func() {
		etcdctlPath = filepath.Join(os.TempDir(), fmt.Sprintf("ketch-test-etcdctl-%d", os.Getpid()))
		out, err := exec.Command("go", "build", "-o", etcdctlPath, "go.etcd.io/etcd/etcdctl/v3").CombinedOutput()
		if err != nil {
			etcdctlErr = fmt.Errorf("building etcdctl: %v\n%s", err, out)
		}
	})
	if etcdctlErr != nil {
		t.Fatal(etcdctlErr)
	}
	t.Cleanup(func() { os.Remove(etcdctlPath) })
	return etcdctlPath
}

type ctl struct {
	t        *testing.T
	bin      string
	endpoint string
}

func (c ctl) run(stdin string, args ...string) string {
	c.t.Helper()
	cmd := exec.Command(c.bin, append([]string{"--endpoints", c.endpoint, "--command-timeout", "10s"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("etcdctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (c ctl) json(v any, args ...string) {
	c.t.Helper()
	out := c.run("", append(args, "-w", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("etcdctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestEtcdctl drives `ketch datastore` with the real etcdctl, as an operator would.
func TestEtcdctl(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "datastore.sock")
	ds := testutil.StartDatastore(t, "", "--listen-client-urls", "unix://"+sock)
	bin := etcdctl(t)
	for _, endpoint := range []string{ds.Endpoint, "unix://" + sock} {
		c := ctl{t: t, bin: bin, endpoint: endpoint}
		key := "/registry/" + strings.ReplaceAll(endpoint, "/", "_")
		if out := c.run("", "put", key+"/a", "1"); strings.TrimSpace(out) != "OK" {
			t.Fatalf("put: %q", out)
		}
		c.run("", "put", key+"/b", "2")
		if out := c.run("", "get", key, "--prefix", "--keys-only"); !strings.Contains(out, key+"/a") || !strings.Contains(out, key+"/b") {
			t.Fatalf("get --prefix: %q", out)
		}
		var got struct {
			Header struct{ Revision int64 }
			Kvs    []struct {
				ModRevision int64 `json:"mod_revision"`
			}
			Count int64
		}
		c.json(&got, "get", key, "--prefix")
		if got.Count != 2 || got.Kvs[1].ModRevision != got.Header.Revision {
			t.Fatalf("get -w json: %+v", got)
		}
		txn := fmt.Sprintf("mod(%q) = \"%d\"\n\nput %s/a 10\n\nget %s/a\n\n", key+"/a", got.Kvs[0].ModRevision, key, key)
		if out := c.run(txn, "txn"); !strings.HasPrefix(out, "SUCCESS") {
			t.Fatalf("txn: %q", out)
		}
		if out := c.run(txn, "txn"); !strings.HasPrefix(out, "FAILURE") {
			t.Fatalf("repeated txn: %q", out)
		}
		if out := c.run("", "del", key+"/b"); strings.TrimSpace(out) != "1" {
			t.Fatalf("del: %q", out)
		}
	}
	c := ctl{t: t, bin: bin, endpoint: ds.Endpoint}

	// Watch history from the start, then one live event.
	watch := exec.Command(bin, "--endpoints", ds.Endpoint, "watch", "--rev", "1", "--prefix", "/registry/")
	var watchOut strings.Builder
	watch.Stdout = &watchOut
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	c.run("", "put", "/registry/live", "x")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(watchOut.String(), "/registry/live") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	watch.Process.Kill()
	watch.Wait()
	if w := watchOut.String(); !strings.Contains(w, "PUT") || !strings.Contains(w, "DELETE") || !strings.Contains(w, "/registry/live") {
		t.Fatalf("watch output: %q", w)
	}

	// Leases.
	lease := strings.Fields(c.run("", "lease", "grant", "600"))[1]
	c.run("", "put", "--lease", lease, "/leased", "v")
	if out := c.run("", "lease", "timetolive", "--keys", lease); !strings.Contains(out, "/leased") || !strings.Contains(out, "granted with TTL(600s)") {
		t.Fatalf("lease timetolive: %q", out)
	}
	if out := c.run("", "lease", "list"); !strings.Contains(out, lease) {
		t.Fatalf("lease list: %q", out)
	}
	c.run("", "lease", "revoke", lease)
	if out := c.run("", "get", "/leased"); out != "" {
		t.Fatalf("key of a revoked lease: %q", out)
	}

	// Maintenance and cluster.
	var status []struct {
		Status struct {
			Header  struct{ Revision int64 }
			Version string
			DbSize  int64 `json:"dbSize"`
		}
	}
	c.json(&status, "endpoint", "status")
	if len(status) != 1 || !strings.HasPrefix(status[0].Status.Version, "3.6.") || status[0].Status.DbSize == 0 {
		t.Fatalf("endpoint status: %+v", status)
	}
	if out := c.run("", "endpoint", "health"); !strings.Contains(out, "is healthy") {
		t.Fatalf("endpoint health: %q", out)
	}
	if out := c.run("", "member", "list"); !strings.Contains(out, "started, default") {
		t.Fatalf("member list: %q", out)
	}
	rev := status[0].Status.Header.Revision
	c.run("", "compaction", fmt.Sprint(rev-1))
	c.run("", "defrag")
	if out := c.run("", "get", "/registry/live"); !strings.Contains(out, "x") {
		t.Fatalf("data after compaction and defrag: %q", out)
	}

	// A snapshot is a consistent copy of the datastore file, followed by its SHA-256 like etcd's.
	snap := filepath.Join(t.TempDir(), "snap.db")
	c.run("", "snapshot", "save", snap)
	b, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), datastore.DBFileName)
	if err := os.WriteFile(restored, b[:len(b)-32], 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := mvcc.Open(mvcc.Options{Path: restored})
	if err != nil {
		t.Fatalf("opening the snapshot: %v", err)
	}
	defer s.Close()
	if s.Rev() != rev {
		t.Fatalf("snapshot at revision %d, want %d", s.Rev(), rev)
	}
}

// runKetch runs ketch to completion and returns its combined output and exit code.
func runKetch(t *testing.T, timeout time.Duration, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(testutil.KetchBinary(t), args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("ketch %s still running after %v\n%s", strings.Join(args, " "), timeout, out.String())
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

func TestDatastoreBadInput(t *testing.T) {
	ds := testutil.StartDatastore(t, "")
	// The data dir of a running datastore.
	out, code := runKetch(t, 20*time.Second, "datastore", "--data-dir", ds.DataDir, "--listen-client-urls", "http://"+testutil.FreeLoopbackAddr(t))
	if code == 0 || !strings.Contains(out, "already in use") || !strings.Contains(out, ds.DataDir) {
		t.Errorf("second datastore on one data dir: exit %d\n%s", code, out)
	}
	// A port in use.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out, code = runKetch(t, 20*time.Second, "datastore", "--data-dir", t.TempDir(), "--listen-client-urls", "http://"+l.Addr().String())
	if code == 0 || !strings.Contains(out, "already in use") || !strings.Contains(out, l.Addr().String()) {
		t.Errorf("port in use: exit %d\n%s", code, out)
	}
	// Unsupported URL.
	out, code = runKetch(t, 20*time.Second, "datastore", "--data-dir", t.TempDir(), "--listen-client-urls", "https://127.0.0.1:1")
	if code == 0 || !strings.Contains(out, `scheme "https" is not supported`) {
		t.Errorf("https URL: exit %d\n%s", code, out)
	}
	// A damaged file.
	dir := t.TempDir()
	path := filepath.Join(dir, datastore.DBFileName)
	if err := os.WriteFile(path, []byte(strings.Repeat("x", 1<<16)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = runKetch(t, 20*time.Second, "datastore", "--data-dir", dir, "--listen-client-urls", "http://"+testutil.FreeLoopbackAddr(t))
	if code == 0 || !strings.Contains(out, "corrupt") || !strings.Contains(out, path) {
		t.Errorf("damaged file: exit %d\n%s", code, out)
	}
	if out, code = runKetch(t, 20*time.Second, "datastore", "check", path); code == 0 || !strings.Contains(out, "corrupt") {
		t.Errorf("datastore check of a damaged file: exit %d\n%s", code, out)
	}
	// SIGTERM stops the datastore cleanly, and everything it acknowledged is there afterwards.
	c := ds.Client()
	if _, err := c.Put(t.Context(), "k", "v"); err != nil {
		t.Fatal(err)
	}
	ds.Stop()
	if code := ds.ExitCode(); code != 0 {
		t.Errorf("exit code after SIGTERM: %d", code)
	}
	good := filepath.Join(ds.DataDir, datastore.DBFileName)
	if out, code = runKetch(t, 20*time.Second, "datastore", "check", good); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("datastore check of a good file: exit %d\n%s", code, out)
	}
	ds.Start()
	resp, err := ds.Client().Get(t.Context(), "k")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("after restart: %v %v", resp, err)
	}
}
