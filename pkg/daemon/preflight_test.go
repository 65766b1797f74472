package daemon

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestLockDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	lock, err := LockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "ketch.pid")
	if b, _ := os.ReadFile(pidFile); strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("ketch.pid holds %q, want this process' pid %d", b, os.Getpid())
	}

	// flock locks belong to the open file, so a second open in this process contends like another
	// process would.
	_, err = LockDataDir(dir)
	if err == nil {
		t.Fatal("a second lock of a locked data dir succeeded")
	}
	for _, want := range []string{dir, "in use by another running ketch", "(pid " + strconv.Itoa(os.Getpid()) + ")", "--data-dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	t.Log(err)

	lock.Release()
	lock, err = LockDataDir(dir)
	if err != nil {
		t.Fatalf("locking again after release: %v", err)
	}
	lock.Release()
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
	_, err = LockDataDir(dir)
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
	_, err := LockDataDir(filepath.Join(file, "data"))
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

	if err := CheckPortsFree(Port{free, "kube-apiserver", "--https-listen-port"}); err != nil {
		t.Fatalf("a free port: %v", err)
	}
	err = CheckPortsFree(
		Port{free, "kube-scheduler", "--kube-scheduler-arg secure-port=PORT"},
		Port{busy, "the kubelet", "--kubelet-arg port=PORT"},
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
	err = CheckPortsFree(Port{busy, "a", "x"}, Port{l2.Addr().String(), "b", "y"})
	if err == nil || !strings.Contains(err.Error(), busy+", for a") || !strings.Contains(err.Error(), l2.Addr().String()+", for b") {
		t.Errorf("two ports in use: %v", err)
	}

	// An address that is not this host's.
	err = CheckPortsFree(Port{"192.0.2.1:6443", "kube-apiserver", "--bind-address"})
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
