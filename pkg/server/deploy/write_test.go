package deploy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var bundled = map[string][]byte{
	"coredns.yaml":        []byte("kind: coredns\n"),
	"local-storage.yaml":  []byte("kind: local-storage\n"),
	"metrics-server.yaml": []byte("kind: metrics-server\n"),
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func TestWriteBundledWrites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "server", "manifests")
	if err := WriteBundled(dir, bundled, nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for name, content := range bundled {
		want[name] = string(content)
	}
	if got := readDir(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("dir holds %v, want %v (and no temporary files)", got, want)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, %v; want 0700", st.Mode(), err)
	}
	st, err = os.Stat(filepath.Join(dir, "coredns.yaml"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, %v; want 0600", st.Mode(), err)
	}
}

func TestWriteBundledKeepsIdenticalFiles(t *testing.T) {
	dir := t.TempDir()
	if err := WriteBundled(dir, bundled, nil); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, name := range []string{"coredns.yaml", "metrics-server.yaml"} {
		if err := os.Chtimes(filepath.Join(dir, name), past, past); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "metrics-server.yaml"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, "metrics-server.yaml"), past, past); err != nil {
		t.Fatal(err)
	}
	if err := WriteBundled(dir, bundled, nil); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "coredns.yaml"))
	if err != nil || !st.ModTime().Equal(past) {
		t.Errorf("identical coredns.yaml was rewritten: mtime %v, %v", st.ModTime(), err)
	}
	st, err = os.Stat(filepath.Join(dir, "metrics-server.yaml"))
	if err != nil || st.ModTime().Equal(past) || st.Mode().Perm() != 0o600 {
		t.Errorf("changed metrics-server.yaml not rewritten 0600: %v %v, %v", st.ModTime(), st.Mode(), err)
	}
	if got := readDir(t, dir)["metrics-server.yaml"]; got != string(bundled["metrics-server.yaml"]) {
		t.Errorf("metrics-server.yaml = %q", got)
	}
}

func TestWriteBundledRespectsSkip(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"coredns.yaml": "mine\n", "coredns.yaml.skip": "", "metrics-server.yaml.skip": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Disabling an addon whose file is marked .skip leaves the administrator's file too.
	if err := WriteBundled(dir, bundled, []string{"coredns"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"coredns.yaml":             "mine\n",
		"coredns.yaml.skip":        "",
		"metrics-server.yaml.skip": "",
		"local-storage.yaml":       string(bundled["local-storage.yaml"]),
	}
	if got := readDir(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("dir holds %v, want %v", got, want)
	}
}

func TestWriteBundledRemovesDisabled(t *testing.T) {
	dir := t.TempDir()
	if err := WriteBundled(dir, bundled, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mine.yaml"), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Repeats are fine, and disabling twice (the file already gone) too.
	for range 2 {
		if err := WriteBundled(dir, bundled, []string{"metrics-server", "coredns", "coredns"}); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"local-storage.yaml": string(bundled["local-storage.yaml"]), "mine.yaml": "x\n"}
	if got := readDir(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("dir holds %v, want %v", got, want)
	}
}

func TestWriteBundledRejectsUnknownAddon(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "manifests")
	for _, name := range []string{"traefik", "coredns.yaml", ""} {
		err := WriteBundled(dir, bundled, []string{"coredns", name})
		if err == nil || !strings.Contains(err.Error(), "coredns, local-storage, metrics-server") {
			t.Errorf("disabling %q: error %v, want one naming the addons", name, err)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused call created or changed the directory: %v", err)
	}
}

func TestWriteBundledRejectsBadNames(t *testing.T) {
	for _, name := range []string{"../x.yaml", "sub/x.yaml", ".hidden.yaml", "x.yml", "x.json"} {
		if err := WriteBundled(t.TempDir(), map[string][]byte{name: nil}, nil); err == nil {
			t.Errorf("bundled name %q accepted", name)
		}
	}
}
