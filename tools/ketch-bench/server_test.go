package main

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestParsePhaseLine(t *testing.T) {
	for _, tc := range []struct {
		line    string
		name    string
		printed time.Duration
		ok      bool
	}{
		// What pkg/server's progress prints: "ketch: %-28s %6.1fs".
		{fmt.Sprintf("ketch: %-28s %6.1fs", "node Ready", 8.1), "node Ready", 8100 * time.Millisecond, true},
		{fmt.Sprintf("ketch: %-28s %6.1fs", "datastore ready", 0.0), "datastore ready", 0, true},
		{fmt.Sprintf("ketch: %-28s %6.1fs", "apiserver ready", 123.4), "apiserver ready", 123400 * time.Millisecond, true},
		{"ketch: stopping", "", 0, false},
		{"ketch: swap is on; the kubelet runs with failSwapOn=false", "", 0, false},
		// A message that happens to end in seconds reads as a phase; only the known phase
		// names are reported, so that is harmless.
		{"ketch: waited 10s", "waited", 10 * time.Second, true},
		{"I1122 02:26:00 something 1.0s", "", 0, false},
		{"ketch:  5.0s", "", 0, false},
	} {
		name, printed, ok := parsePhaseLine(tc.line)
		if ok != tc.ok || name != tc.name || (ok && printed.Round(time.Millisecond) != tc.printed) {
			t.Errorf("parsePhaseLine(%q) = %q, %v, %v; want %q, %v, %v", tc.line, name, printed, ok, tc.name, tc.printed, tc.ok)
		}
	}
}

func TestSpread(t *testing.T) {
	s := spreadOf([]time.Duration{9 * time.Second, 7 * time.Second, 8 * time.Second})
	if s.med != 8*time.Second || s.min != 7*time.Second || s.max != 9*time.Second || s.n != 3 {
		t.Fatalf("spread of 3: %+v", s)
	}
	if got, want := s.String(), "8.00 s (7.00–9.00 s)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	// An even count takes the lower middle, like the datastore bench's medians.
	if s := spreadOf([]time.Duration{4, 2}); s.med != 2 || s.min != 2 || s.max != 4 {
		t.Errorf("spread of 2: %+v", s)
	}
	in := []time.Duration{3, 1, 2}
	spreadOf(in)
	if !slices.Equal(in, []time.Duration{3, 1, 2}) {
		t.Errorf("spreadOf reordered its input: %v", in)
	}
	if s := spreadOf(nil); s.String() != "—" {
		t.Errorf("empty spread: %q", s.String())
	}
}

func TestStartRunStats(t *testing.T) {
	runs := []startRun{
		{phases: []phaseTime{{"datastore ready", 1300 * time.Millisecond, time.Second}, {readyPhase, 9300 * time.Millisecond, 9 * time.Second}}, stop: 2 * time.Second},
		{phases: []phaseTime{{"datastore ready", 1500 * time.Millisecond, time.Second}, {readyPhase, 8500 * time.Millisecond, 8 * time.Second}}},
		{phases: []phaseTime{{"datastore ready", 1400 * time.Millisecond, time.Second}, {readyPhase, 10400 * time.Millisecond, 10 * time.Second}}, stop: time.Second},
	}
	if s := phaseSpread(runs, readyPhase); s.med != 9300*time.Millisecond || s.min != 8500*time.Millisecond || s.max != 10400*time.Millisecond {
		t.Errorf("ready spread %+v", s)
	}
	if s := execOffset(runs); s.med != 400*time.Millisecond || s.min != 300*time.Millisecond || s.max != 500*time.Millisecond {
		t.Errorf("exec offset %+v", s)
	}
	// A run without a clean stop is left out.
	if s := stopSpread(runs); s.n != 2 || s.med != time.Second {
		t.Errorf("stop spread %+v", s)
	}
	if got := runList(runs); got != "9.30 s, 8.50 s, 10.40 s" {
		t.Errorf("runList = %q", got)
	}
}

func TestNodeProcs(t *testing.T) {
	const sock = "/tmp/kb-run-1/containerd/containerd.sock"
	shim := func(id string) []string {
		return []string{"/work/main/bin/ketch", "-namespace", "k8s.io", "-id", id, "-address", sock}
	}
	procs := []procInfo{
		{pid: 1, ppid: 0, argv: []string{"/sbin/init"}},
		{pid: 100, ppid: 1, argv: []string{"/work/main/bin/ketch", "server", "--run-dir", "/tmp/kb-run-1"}},
		{pid: 101, ppid: 100, argv: []string{"iptables", "-L"}},
		// A shim below the server (if ketch is a subreaper) still counts as a shim, once.
		{pid: 200, ppid: 100, argv: shim("a")},
		{pid: 201, ppid: 200, argv: []string{"/pause"}},
		{pid: 300, ppid: 1, argv: shim("b")},
		{pid: 301, ppid: 300, argv: []string{"/pause"}},
		{pid: 302, ppid: 301, argv: []string{"sh"}},
		// Another node's shim and a client that merely mentions the socket.
		{pid: 400, ppid: 1, argv: []string{"/usr/bin/ketch", "-id", "c", "-address", "/run/ketch/containerd/containerd.sock"}},
		{pid: 401, ppid: 400, argv: []string{"/pause"}},
		{pid: 500, ppid: 1, argv: []string{"ketch", "images", "list", "--address=" + sock + ".x"}},
	}
	server, shims, containers := nodeProcs(procs, 100, sock)
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

func TestVerdict(t *testing.T) {
	if verdict(1, 2) != "met" || verdict(2, 2) != "met" || verdict(3, 2) != "**missed**" {
		t.Error("verdict")
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
	before := cpuSample{host: 10 * time.Second, server: 2 * time.Second, serverChildren: time.Second,
		shimPIDs: map[int][2]time.Duration{7: {time.Second, 0}}}
	after := cpuSample{host: 30 * time.Second, server: 5 * time.Second, serverChildren: 4 * time.Second,
		shimPIDs: map[int][2]time.Duration{7: {2 * time.Second, time.Second}, 8: {3 * time.Second, 2 * time.Second}}}
	u := after.since(before)
	want := cpuUse{host: 20 * time.Second, server: 3 * time.Second, serverChildren: 3 * time.Second, shims: 4 * time.Second, shimChildren: 3 * time.Second}
	if u != want {
		t.Fatalf("got %+v, want %+v", u, want)
	}
}

func TestPSSCell(t *testing.T) {
	one := pssGroup{pss: 3 << 20, anon: 1 << 20, procs: 1}
	if got, want := pssCell(one), "3 MiB (1 MiB anon, 1 process)"; got != want {
		t.Errorf("pssCell = %q, want %q", got, want)
	}
	if got, want := pssCell(one.plus(one)), "6 MiB (2 MiB anon, 2 processes)"; got != want {
		t.Errorf("pssCell = %q, want %q", got, want)
	}
	if got, want := pssCell(pssGroup{}), "0 B (0 B anon, 0 processes)"; got != want {
		t.Errorf("pssCell = %q, want %q", got, want)
	}
}
