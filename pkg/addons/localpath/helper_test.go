package localpath

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func helper(op, dir, root string) error {
	return HelperMain(context.Background(), []string{op, "--dir", dir, "--root", root})
}

func TestHelperCreateDelete(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "pvc-1_app_data")
	for range 2 { // idempotent
		if err := helper("create", dir, root); err != nil {
			t.Fatalf("create: %v", err)
		}
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o777 {
			t.Fatalf("after create: %v, %v; want a directory with mode 0777", fi, err)
		}
	}
	// What a pod leaves: nested directories, one closed to all, files, a link out of the
	// volume that delete must remove, not follow.
	outside := t.TempDir()
	keep := filepath.Join(outside, "keep")
	mustWrite(t, keep)
	mustMkdir(t, filepath.Join(dir, "a", "b"))
	mustWrite(t, filepath.Join(dir, "a", "b", "file"))
	if err := os.Symlink(outside, filepath.Join(dir, "a", "out")); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 { // as in the helper pod; another user could not delete it either
		if err := os.Chmod(filepath.Join(dir, "a"), 0o500); err != nil {
			t.Fatal(err)
		}
	}
	if err := helper("delete", dir, root); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after delete: %v, want the directory gone", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("delete followed a link out of the volume: %v", err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Errorf("delete removed the storage root: %v", err)
	}
	if err := helper("delete", dir, root); err != nil {
		t.Errorf("deleting a missing directory: %v, want success", err)
	}
}

func TestHelperCreateNested(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "x", "y")
	if err := helper("create", dir, root); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("after create: %v, %v", fi, err)
	}
}

func TestHelperRefusals(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	mustWrite(t, filepath.Join(outside, "keep"))
	mustMkdir(t, filepath.Join(root, "inner"))
	mustWrite(t, filepath.Join(root, "file"))
	for name, target := range map[string]string{
		"escape":      outside, // absolute link out of the root
		"escape-rel":  "../" + filepath.Base(outside),
		"inside-link": "inner",              // a link, even within the root
		"dangling":    "/nonexistent/place", // where create would otherwise make a directory
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no operation", nil, "usage"},
		{"unknown operation", []string{"wipe", "--dir", root + "/x"}, `unknown operation "wipe"`},
		{"no --dir", []string{"create", "--root", root}, "--dir is required"},
		{"extra argument", []string{"create", "--dir", root + "/x", "--root", root, "more"}, "unexpected arguments"},
		{"relative dir", []string{"create", "--dir", "x", "--root", root}, "not an absolute path"},
		{"relative root", []string{"create", "--dir", "/x", "--root", "storage"}, "not an absolute path"},
		{"root itself", []string{"delete", "--dir", root, "--root", root}, "storage root itself"},
		{"root itself, trailing slash", []string{"delete", "--dir", root + "/", "--root", root}, "storage root itself"},
		{"root itself, dot", []string{"delete", "--dir", root + "/.", "--root", root}, "storage root itself"},
		{"dot-dot", []string{"delete", "--dir", root + "/inner/../..", "--root", root}, "contains .."},
		{"dot-dot back inside", []string{"create", "--dir", root + "/../" + filepath.Base(root) + "/x", "--root", root}, "contains .."},
		{"outside", []string{"delete", "--dir", outside, "--root", root}, "outside the storage root"},
		{"sibling with the root as prefix", []string{"create", "--dir", root + "-other/x", "--root", root}, "outside the storage root"},
		{"through a link out", []string{"create", "--dir", root + "/escape/x", "--root", root}, "escapes"},
		{"through a relative link out", []string{"delete", "--dir", root + "/escape-rel/keep", "--root", root}, "escapes"},
		{"delete a link out", []string{"delete", "--dir", root + "/escape", "--root", root}, "symbolic link"},
		{"create on a link out", []string{"create", "--dir", root + "/escape", "--root", root}, "symbolic link"},
		{"create on a link inside", []string{"create", "--dir", root + "/inside-link", "--root", root}, "symbolic link"},
		{"delete a link inside", []string{"delete", "--dir", root + "/inside-link", "--root", root}, "symbolic link"},
		{"create on a dangling link", []string{"create", "--dir", root + "/dangling", "--root", root}, "symbolic link"},
		{"create on a file", []string{"create", "--dir", root + "/file", "--root", root}, "not a directory"},
		{"delete a file", []string{"delete", "--dir", root + "/file", "--root", root}, "not a directory"},
		{"missing root", []string{"create", "--dir", root + "/missing/x", "--root", root + "/missing"}, "storage root"},
	} {
		err := HelperMain(context.Background(), tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.wantErr)
		}
	}
	// Nothing the refusals named was touched.
	for _, p := range []string{filepath.Join(outside, "keep"), filepath.Join(root, "inner"), filepath.Join(root, "file")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range []string{filepath.Join(outside, "x"), "/nonexistent/place", root + "-other"} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s was made: %v", p, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "inner")); err != nil || fi.Mode().Perm() == 0o777 {
		t.Errorf("create through a link inside chmod-ed its target: %v, %v", fi, err)
	}
}

func TestHelperStopped(t *testing.T) {
	root := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := HelperMain(ctx, []string{"create", "--dir", root + "/x", "--root", root}); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if _, err := os.Lstat(root + "/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("created after cancellation: %v", err)
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, file string) {
	t.Helper()
	if err := os.WriteFile(file, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
}
