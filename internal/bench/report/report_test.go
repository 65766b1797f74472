package report

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ketch-k8s/ketch/internal/bench/stats"
)

func TestWriteSection(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "docs", "benchmarks.md")
	beginMarker, endMarker := BeginMarker("datastore"), EndMarker("datastore")
	if beginMarker != "<!-- datastore:begin -->" || endMarker != "<!-- datastore:end -->" {
		t.Fatalf("markers %q %q", beginMarker, endMarker)
	}

	if err := WriteSection(path, "datastore", "first\n"); err != nil {
		t.Fatal(err)
	}
	got := read(t, path)
	if want := "# Benchmarks\n\n" + beginMarker + "\nfirst\n" + endMarker + "\n"; got != want {
		t.Fatalf("new file:\n%q\nwant\n%q", got, want)
	}

	// Text around the markers must survive byte for byte.
	before, after := "# Title\n\nintro\n", "\n## Other\nkeep me"
	mustWrite(t, path, before+beginMarker+"\nold\nstuff\n"+endMarker+after)
	if err := WriteSection(path, "datastore", "second\n"); err != nil {
		t.Fatal(err)
	}
	if got, want := read(t, path), before+beginMarker+"\nsecond\n"+endMarker+after; got != want {
		t.Fatalf("replace:\n%q\nwant\n%q", got, want)
	}

	mustWrite(t, path, "no markers")
	if err := WriteSection(path, "datastore", "third\n"); err != nil {
		t.Fatal(err)
	}
	if got, want := read(t, path), "no markers\n\n"+beginMarker+"\nthird\n"+endMarker+"\n"; got != want {
		t.Fatalf("append:\n%q\nwant\n%q", got, want)
	}

	mustWrite(t, path, endMarker+"\n"+beginMarker)
	if err := WriteSection(path, "datastore", "x\n"); err == nil {
		t.Fatal("out-of-order markers: want error")
	}
}

func TestSpread(t *testing.T) {
	if got, want := Spread(stats.SpreadOf([]time.Duration{9 * time.Second, 7 * time.Second, 8 * time.Second})), "8.00 s (7.00–9.00 s)"; got != want {
		t.Errorf("Spread = %q, want %q", got, want)
	}
	if got := Spread(stats.SpreadOf([]time.Duration{1500 * time.Millisecond})); got != "1.50 s" {
		t.Errorf("one run: %q", got)
	}
	if got := Spread(stats.SpreadOf(nil)); got != "—" {
		t.Errorf("empty spread: %q", got)
	}
}

func TestVerdict(t *testing.T) {
	if Verdict(1, 2) != "met" || Verdict(2, 2) != "met" || Verdict(3, 2) != "**missed**" {
		t.Error("Verdict")
	}
	if AtLeast(3, 2) != "met" || AtLeast(2, 2) != "met" || AtLeast(1, 2) != "**missed**" {
		t.Error("AtLeast")
	}
}

func TestFormat(t *testing.T) {
	for got, want := range map[string]string{
		Commas(1234567):                    "1,234,567",
		Commas(-1000):                      "-1,000",
		Plural(1, "client"):                "1 client",
		Plural(1000, "lookup"):             "1,000 lookups",
		JoinInts([]int{1, 16, 2560}):       "1 / 16 / 2,560",
		Duration(990 * time.Microsecond):   "0.990 ms",
		Duration(12345 * time.Microsecond): "12.3 ms",
		Duration(12 * time.Second):         "12.0 s",
		Bytes(3 << 20):                     "3 MiB",
		Bytes(1536):                        "1.5 KiB",
		Bytes(512):                         "512 B",
		BitRate(1e9):                       "8.00 Gbit/s (1,000 MB/s)",
		Micros(30 * time.Microsecond):      "30 µs",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
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
