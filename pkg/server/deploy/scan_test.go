package deploy

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestScanDir(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{
		"b.yaml", "a.yml", "c.yaml", "c.yaml.skip", // c is skipped
		"gone.yaml.skip",             // skipped and absent: its objects stay
		".hidden.yaml", ".b.yaml123", // hidden, like a temporary file
		".x.yaml.skip", // a hidden mark counts for nothing
		"notes.txt", "d.json", "e.yaml~", "f.yaml.bak", "README",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub.yaml", "inner.yaml"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := scanDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.yml", "b.yaml"}; !reflect.DeepEqual(l.apply, want) {
		t.Errorf("apply = %v, want %v", l.apply, want)
	}
	want := map[string]bool{"a.yml": true, "b.yaml": true, "c.yaml": true, "gone.yaml": true}
	if !reflect.DeepEqual(l.keep, want) {
		t.Errorf("keep = %v, want %v", l.keep, want)
	}
}

func TestScanDirMissing(t *testing.T) {
	// A missing directory must not read as "every manifest was removed".
	if _, err := scanDir(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("scanning a missing directory succeeded")
	}
}

func TestRelevant(t *testing.T) {
	for name, want := range map[string]bool{
		"a.yaml": true, "a.yml": true, "a.yaml.skip": true,
		".a.yaml": false, ".coredns.yaml8731": false, ".a.yaml.skip": false, "a.txt": false, "a.yaml.swp": false,
	} {
		if relevant(name) != want {
			t.Errorf("relevant(%q) = %v", name, !want)
		}
	}
}
