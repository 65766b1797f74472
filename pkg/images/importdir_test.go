package images

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"
)

func TestImportDir(t *testing.T) {
	client := startContainerd(t)
	ctx := context.Background()
	dir := t.TempDir()

	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oneTar := write("one.tar", ociTar(t, appImage(t, "one"), "example.com/ketch/one:v1"))
	write("two.tgz", gzipped(t, dockerTar(t, appImage(t, "two"), "example.com/ketch/two:v1")))
	full := gzipped(t, ociTar(t, appImage(t, "bad"), "example.com/ketch/bad:v1"))
	badPath := write("bad.tar.gz", full[:len(full)/2]) // a half-copied file
	write("notes.txt", []byte("not an archive: left alone"))
	if err := os.Mkdir(filepath.Join(dir, "sub.tar"), 0o755); err != nil {
		t.Fatal(err)
	}

	byPath := func(results []FileResult) map[string]FileResult {
		m := make(map[string]FileResult)
		for _, r := range results {
			m[filepath.Base(r.Path)] = r
		}
		return m
	}
	checkBadOnly := func(err error, results map[string]FileResult) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), badPath) {
			t.Fatalf("error %v does not name %s", err, badPath)
		}
		if strings.Contains(err.Error(), "one.tar") || strings.Contains(err.Error(), "two.tgz") {
			t.Errorf("error blames a good file: %v", err)
		}
		if results["bad.tar.gz"].Err == nil {
			t.Error("bad.tar.gz has no error of its own")
		}
		if len(results) != 3 {
			t.Errorf("results for %d files, want 3 archives: %v", len(results), results)
		}
	}

	// First start: the two good files are imported, the bad one fails alone.
	results, err := ImportDir(ctx, client, dir)
	got := byPath(results)
	checkBadOnly(err, got)
	for file, want := range map[string]string{"one.tar": "example.com/ketch/one:v1", "two.tgz": "example.com/ketch/two:v1"} {
		r := got[file]
		if r.Err != nil || r.Skipped || !slices.Equal(r.Images, []string{want}) {
			t.Errorf("%s: %+v, want %s imported", file, r, want)
		}
		checkUnpacked(t, client, want, "/app", 0o755, []byte(strings.TrimSuffix(strings.TrimSuffix(file, ".tar"), ".tgz")))
	}
	if _, err := os.Stat(filepath.Join(dir, StateFileName)); err != nil {
		t.Fatalf("no state file: %v", err)
	}

	// Restart: nothing is imported again; the bad file is tried again and fails again.
	results, err = ImportDir(ctx, client, dir)
	got = byPath(results)
	checkBadOnly(err, got)
	for _, file := range []string{"one.tar", "two.tgz"} {
		if r := got[file]; r.Err != nil || !r.Skipped || len(r.Images) != 1 {
			t.Errorf("second start, %s: %+v, want skipped", file, r)
		}
	}

	// Same bytes, new mtime (copied over again): recognized by digest, still skipped.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(oneTar, later, later); err != nil {
		t.Fatal(err)
	}
	// An image removed from containerd since (or containerd's state reset): imported again.
	nsctx := namespaces.WithNamespace(ctx, Namespace)
	if err := client.ImageService().Delete(nsctx, "example.com/ketch/two:v1"); err != nil {
		t.Fatal(err)
	}
	os.Remove(badPath)
	results, err = ImportDir(ctx, client, dir)
	if err != nil {
		t.Fatal(err)
	}
	got = byPath(results)
	if r := got["one.tar"]; !r.Skipped {
		t.Errorf("touched one.tar was imported again: %+v", r)
	}
	if r := got["two.tgz"]; r.Skipped || r.Err != nil {
		t.Errorf("two.tgz, whose image was removed, was not imported again: %+v", r)
	}
	checkUnpacked(t, client, "example.com/ketch/two:v1", "/app", 0o755, []byte("two"))

	// A state file elsewhere, for a read-only images dir; a missing dir is no error.
	stateElsewhere := filepath.Join(t.TempDir(), "state.json")
	if _, err := ImportDir(ctx, client, dir, WithStateFile(stateElsewhere)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stateElsewhere); err != nil {
		t.Errorf("WithStateFile: %v", err)
	}
	if results, err := ImportDir(ctx, client, filepath.Join(dir, "missing")); err != nil || len(results) != 0 {
		t.Errorf("missing dir: %v, %v", results, err)
	}
}
