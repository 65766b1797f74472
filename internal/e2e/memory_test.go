package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// serverHeapLimit is the most live heap an idle server with its bundled addons may hold: about
// 20 % above what it held when the limit was set (docs/benchmarks.md, "Lean"). The measure is
// the Go heap right after a forced garbage collection, which leaves only live objects, so the
// check does not move with GC timing as RSS or PSS would. A change that trips it has made every
// idle node bigger: find out why before raising it.
const serverHeapLimit = 155 << 20

// checkProfilesAndHeap runs against a server started with --enable-pprof: the API serves the
// server process's profiles, the kubelet serves them through the node proxy, and the heap after
// a forced collection (the heap profile's gc=1) stays under serverHeapLimit.
func checkProfilesAndHeap(t *testing.T, s *server, node string) {
	for _, path := range []string{"/debug/pprof/heap?gc=1", "/api/v1/nodes/" + node + "/proxy/debug/pprof/heap"} {
		out, err := s.ketch("", "kubectl", "get", "--raw", path)
		// A heap profile is gzip-compressed protobuf.
		if err != nil || !strings.HasPrefix(out, "\x1f\x8b") {
			t.Fatalf("kubectl get --raw %s: %v, %d bytes, not a profile: %.200q", path, err, len(out), out)
		}
	}
	// The node's own collector target (pkg/lifecycle), as the test environment sets no GOGC.
	if gogc := metric(t, s, "go_gc_gogc_percent"); gogc != 50 {
		t.Errorf("the server collects at GOGC=%v, want 50", gogc)
	}
	heap := metric(t, s, "go_memstats_heap_alloc_bytes")
	t.Logf("server heap after a collection: %.1f MiB (limit %d MiB)", heap/(1<<20), serverHeapLimit>>20)
	if heap > serverHeapLimit {
		t.Errorf("the idle server holds %.1f MiB of live heap, more than the %d MiB limit: profile it (docs/benchmarks.md)", heap/(1<<20), serverHeapLimit>>20)
	}
}

// checkProfilingOff: without --enable-pprof neither the API nor the kubelet serves profiles.
func checkProfilingOff(t *testing.T, s *server, node string) {
	for path, want := range map[string]string{
		"/debug/pprof/": "NotFound",
		"/api/v1/nodes/" + node + "/proxy/debug/pprof/": "MethodNotAllowed",
	} {
		out, err := s.ketch("", "kubectl", "get", "--raw", path)
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("kubectl get --raw %s: %v, want %s without --enable-pprof: %.300s", path, err, want, out)
		}
	}
}

// metric reads one unlabelled sample from the API's /metrics, which covers the whole server
// process: every component runs in it.
func metric(t *testing.T, s *server, name string) float64 {
	t.Helper()
	out, err := s.ketch("", "kubectl", "get", "--raw", "/metrics")
	if err != nil {
		t.Fatalf("kubectl get --raw /metrics: %v\n%.300s", err, out)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}
