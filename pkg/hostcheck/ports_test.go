package hostcheck

import (
	"net"
	"strings"
	"testing"
)

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
