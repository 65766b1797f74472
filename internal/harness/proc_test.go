package harness

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

func TestNodeProcs(t *testing.T) {
	const sock = "/tmp/kb-run-1/containerd/containerd.sock"
	shim := func(id string) []string {
		return []string{"/work/main/bin/ketch", "-namespace", "k8s.io", "-id", id, "-address", sock}
	}
	procs := []Proc{
		{PID: 1, PPID: 0, Argv: []string{"/sbin/init"}},
		{PID: 100, PPID: 1, Argv: []string{"/work/main/bin/ketch", "server", "--run-dir", "/tmp/kb-run-1"}},
		{PID: 101, PPID: 100, Argv: []string{"iptables", "-L"}},
		// A shim below the server (if ketch is a subreaper) still counts as a shim, once.
		{PID: 200, PPID: 100, Argv: shim("a")},
		{PID: 201, PPID: 200, Argv: []string{"/pause"}},
		{PID: 300, PPID: 1, Argv: shim("b")},
		{PID: 301, PPID: 300, Argv: []string{"/pause"}},
		{PID: 302, PPID: 301, Argv: []string{"sh"}},
		// Another node's shim and a client that merely mentions the socket.
		{PID: 400, PPID: 1, Argv: []string{"/usr/bin/ketch", "-id", "c", "-address", "/run/ketch/containerd/containerd.sock"}},
		{PID: 401, PPID: 400, Argv: []string{"/pause"}},
		{PID: 500, PPID: 1, Argv: []string{"ketch", "images", "list", "--address=" + sock + ".x"}},
	}
	server, shims, containers := NodeProcs(procs, 100, sock)
	slices.Sort(server)
	slices.Sort(shims)
	slices.Sort(containers)
	if !slices.Equal(server, []int{100, 101}) || !slices.Equal(shims, []int{200, 300}) || !slices.Equal(containers, []int{201, 301, 302}) {
		t.Fatalf("server %v shims %v containers %v", server, shims, containers)
	}
	if !isShimOf([]string{"x", "-address=" + sock}, sock) || isShimOf([]string{"x", "-address"}, sock) {
		t.Error("isShimOf")
	}
}

func TestParseProcStatCPU(t *testing.T) {
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
	stat := "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 30 20 20 0 12 0 100 0\n"
	self, children, err := parseProcStatCPU(stat)
	if err != nil || self != 3*time.Second || children != 500*time.Millisecond {
		t.Fatalf("got %v %v %v, want 3s 500ms", self, children, err)
	}
	if _, _, err := parseProcStatCPU("1234 (x) S 1"); err == nil {
		t.Error("short stat: want error")
	}
}

func TestCPUUse(t *testing.T) {
	before := CPUSample{Host: 10 * time.Second, Ketch: 2 * time.Second, KetchChildren: time.Second,
		ShimPIDs: map[int][2]time.Duration{7: {time.Second, 0}}}
	after := CPUSample{Host: 30 * time.Second, Ketch: 5 * time.Second, KetchChildren: 4 * time.Second,
		ShimPIDs: map[int][2]time.Duration{7: {2 * time.Second, time.Second}, 8: {3 * time.Second, 2 * time.Second}}}
	u := after.Since(before)
	want := CPUUse{Host: 20 * time.Second, Ketch: 3 * time.Second, KetchChildren: 3 * time.Second, Shims: 4 * time.Second, ShimChildren: 3 * time.Second}
	if u != want {
		t.Fatalf("got %+v, want %+v", u, want)
	}
	if u.Rest() != 7*time.Second {
		t.Errorf("rest %v, want 7s", u.Rest())
	}
}

// TestOwnProcess reads this test process as the benchmarks read a node's.
func TestOwnProcess(t *testing.T) {
	m, err := ReadMemStats(os.Getpid())
	if err != nil || m.RSS == 0 || m.HWM < m.RSS || m.PSS == 0 {
		t.Fatalf("ReadMemStats = %+v, %v", m, err)
	}
	g := MemoryOf([]int{os.Getpid(), -1})
	if g.Procs != 1 || g.PSS == 0 || g.RSS < g.PSS || g.Anon > g.PSS {
		t.Errorf("MemoryOf(self and a pid that does not exist) = %+v", g)
	}
	if _, _, err := procCPU(os.Getpid()); err != nil {
		t.Error(err)
	}
	if _, err := hostBusy(); err != nil {
		t.Error(err)
	}
}

func TestProcessStop(t *testing.T) {
	p, err := Start(exec.Command("sleep", "60"), syscall.SIGKILL)
	if err != nil {
		t.Fatal(err)
	}
	if p.Exited() || p.ExitCode() != -1 {
		t.Fatal("a running process counts as exited")
	}
	// Start returns once the child's exec has begun, but the kernel sets the new program's
	// command line a moment later: until then /proc/PID/cmdline reads empty (CI saw it once).
	var found []Proc
	err = wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		found, err = ProcessesMentioning("sleep 60")
		return err == nil && slices.ContainsFunc(found, func(q Proc) bool { return q.PID == p.PID() }), err
	})
	if err != nil {
		t.Errorf("ProcessesMentioning does not find pid %d: %v, %v", p.PID(), found, err)
	}
	if _, err := p.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() || p.Wait() == nil {
		t.Errorf("after Stop: exited %v, wait %v", p.Exited(), p.Wait())
	}
	if took, err := p.Stop(syscall.SIGTERM, time.Second); took != 0 || err != nil {
		t.Errorf("second Stop: %v, %v", took, err)
	}

	// A process that ignores the signal is killed after the grace period, and that is an error.
	// (Short sleeps: the SIGKILLed shell leaves its current one behind.)
	p, err = Start(exec.Command("sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"), syscall.SIGKILL)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the shell set its trap
	if _, err := p.Stop(syscall.SIGTERM, 200*time.Millisecond); err == nil || !p.Exited() {
		t.Errorf("Stop of a process that ignores SIGTERM: %v, exited %v", err, p.Exited())
	}
}
