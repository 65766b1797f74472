package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteSection(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "docs", "benchmarks.md")

	if err := writeSection(path, "first\n"); err != nil {
		t.Fatal(err)
	}
	got := read(t, path)
	if want := "# Benchmarks\n\n" + beginMarker + "\nfirst\n" + endMarker + "\n"; got != want {
		t.Fatalf("new file:\n%q\nwant\n%q", got, want)
	}

	// Text around the markers must survive byte for byte.
	before, after := "# Title\n\nintro\n", "\n## Other\nkeep me"
	mustWrite(t, path, before+beginMarker+"\nold\nstuff\n"+endMarker+after)
	if err := writeSection(path, "second\n"); err != nil {
		t.Fatal(err)
	}
	if got, want := read(t, path), before+beginMarker+"\nsecond\n"+endMarker+after; got != want {
		t.Fatalf("replace:\n%q\nwant\n%q", got, want)
	}

	mustWrite(t, path, "no markers")
	if err := writeSection(path, "third\n"); err != nil {
		t.Fatal(err)
	}
	if got, want := read(t, path), "no markers\n\n"+beginMarker+"\nthird\n"+endMarker+"\n"; got != want {
		t.Fatalf("append:\n%q\nwant\n%q", got, want)
	}

	mustWrite(t, path, endMarker+"\n"+beginMarker)
	if err := writeSection(path, "x\n"); err == nil {
		t.Fatal("out-of-order markers: want error")
	}
}

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i))
	}
	p := percentiles(d, 0.5, 0.99, 1)
	if p[0] != 50 || p[1] != 99 || p[2] != 100 {
		t.Fatalf("got %v, want [50 99 100]", p)
	}
	if p := percentiles(nil, 0.5); p[0] != 0 {
		t.Fatalf("empty: got %v", p)
	}
}

func TestRatioCell(t *testing.T) {
	for _, tc := range []struct {
		k, e measurement
		want string
	}{
		{rateM("r", 200, "ops/s"), rateM("r", 100, "ops/s"), "ketch better"},
		{latencyM("l", 200), latencyM("l", 100), "etcd better"},
		{bytesM("b", 102), bytesM("b", 100), "≈ same"},
		{percentM("c", 0), percentM("c", 0), "same"},
	} {
		if got := ratioCell(tc.k, tc.e); !strings.Contains(got, tc.want) {
			t.Errorf("ratioCell(%v, %v) = %q, want it to contain %q", tc.k.value, tc.e.value, got, tc.want)
		}
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustWrite(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
