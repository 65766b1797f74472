package server

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ketch-k8s/ketch/pkg/config"
)

func TestLockDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	lock, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "ketch.pid")
	if b, _ := os.ReadFile(pidFile); strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("ketch.pid holds %q, want this process' pid %d", b, os.Getpid())
	}

	// flock locks belong to the open file, so a second open in this process contends like another
	// process would.
	_, err = lockDataDir(dir)
	if err == nil {
		t.Fatal("a second lock of a locked data dir succeeded")
	}
	for _, want := range []string{dir, "in use by another running ketch", "(pid " + strconv.Itoa(os.Getpid()) + ")", "--data-dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	t.Log(err)

	lock.release()
	lock, err = lockDataDir(dir)
	if err != nil {
		t.Fatalf("locking again after release: %v", err)
	}
	lock.release()
}

// TestLockDataDirHeldElsewhere takes the lock as another ketch would, with a pid of its own in
// the file: the error names that pid, and the file is left alone.
func TestLockDataDirHeldElsewhere(t *testing.T) {
	dir := t.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, "ketch.pid"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("4242\n"); err != nil {
		t.Fatal(err)
	}
	_, err = lockDataDir(dir)
	if err == nil || !strings.Contains(err.Error(), "(pid 4242)") || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("got %v, want an in-use error naming pid 4242", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "ketch.pid")); string(b) != "4242\n" {
		t.Errorf("the holder's pid file was changed to %q", b)
	}
}

func TestLockDataDirNotCreatable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := lockDataDir(filepath.Join(file, "data"))
	if err == nil || !strings.Contains(err.Error(), "creating data dir "+filepath.Join(file, "data")) {
		t.Fatalf("got %v", err)
	}
}

func TestCheckPortsFree(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().String()
	free := freeAddr(t)

	if err := checkPortsFree(listenPort{free, "kube-apiserver", "--https-listen-port"}); err != nil {
		t.Fatalf("a free port: %v", err)
	}
	err = checkPortsFree(
		listenPort{free, "kube-scheduler", "--kube-scheduler-arg secure-port=PORT"},
		listenPort{busy, "the kubelet", "--kubelet-arg port=PORT"},
	)
	if err == nil {
		t.Fatal("a port in use passed the check")
	}
	for _, want := range []string{busy + ", for the kubelet (to use another: --kubelet-arg port=PORT)", "already listens", "stop it", "another ketch, k3s or kubelet"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), free) {
		t.Errorf("error %q names the free port %s", err, free)
	}
	t.Log(err)

	// Every port in use is named, in one error.
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	err = checkPortsFree(listenPort{busy, "a", "x"}, listenPort{l2.Addr().String(), "b", "y"})
	if err == nil || !strings.Contains(err.Error(), busy+", for a") || !strings.Contains(err.Error(), l2.Addr().String()+", for b") {
		t.Errorf("two ports in use: %v", err)
	}

	// An address that is not this host's.
	err = checkPortsFree(listenPort{"192.0.2.1:6443", "kube-apiserver", "--bind-address"})
	if err == nil || !strings.Contains(err.Error(), "kube-apiserver cannot listen on 192.0.2.1:6443: it is not an address of this host") {
		t.Errorf("foreign address: %v", err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestServerPorts(t *testing.T) {
	addrs := func(ports []listenPort) []string {
		var out []string
		for _, p := range ports {
			out = append(out, p.addr+" "+p.component)
		}
		return out
	}
	got := addrs(serverPorts(&config.Server{}, "0.0.0.0:6443"))
	want := []string{
		"0.0.0.0:6443 kube-apiserver",
		"127.0.0.1:10257 kube-controller-manager",
		"127.0.0.1:10259 kube-scheduler",
		"0.0.0.0:10250 the kubelet",
		"127.0.0.1:10248 the kubelet's health checks",
		"127.0.0.1:10249 kube-proxy's metrics",
		"127.0.0.1:10256 kube-proxy's health checks",
	}
	if !slices.Equal(got, want) {
		t.Errorf("default ports:\n got %q\nwant %q", got, want)
	}

	// The user's --*-arg values move or turn off a component's server; the last one wins.
	got = addrs(serverPorts(&config.Server{
		ControllerManagerArgs: []string{"secure-port=0"},
		SchedulerArgs:         []string{"bind-address=::1", "secure_port=20259"},
		KubeletArgs:           []string{"port=1", "port=20250", "address=127.0.0.1", "healthz-port=0", "read-only-port=10255"},
		KubeProxyArgs:         []string{"metrics-bind-address=0.0.0.0:20249", "healthz-bind-address="},
	}, "127.0.0.1:7443"))
	want = []string{
		"127.0.0.1:7443 kube-apiserver",
		"[::1]:20259 kube-scheduler",
		"127.0.0.1:20250 the kubelet",
		"127.0.0.1:10255 the kubelet's read-only server",
		"0.0.0.0:20249 kube-proxy's metrics",
	}
	if !slices.Equal(got, want) {
		t.Errorf("overridden ports:\n got %q\nwant %q", got, want)
	}
}
