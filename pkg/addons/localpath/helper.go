package localpath

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/klog/v2"
)

const helperUsage = "usage: local-path-helper create|delete --dir PATH [--root ROOT]"

// HelperMain runs inside a helper pod on a volume's node, given the arguments after the role
// name: create makes directory PATH with mode 0777, so that the volume's pods can write to it
// whatever their user; delete removes PATH and everything in it. PATH must lie strictly inside
// ROOT (default /storage, where the helper pod mounts the node's storage directory), and
// neither PATH nor any directory on the way to it may be a symbolic link out of ROOT. Both
// operations are idempotent, so the provisioner can retry them.
func HelperMain(ctx context.Context, args []string) error {
	op, dir, root, err := parseHelperArgs(args)
	if err != nil {
		return err
	}
	rel, err := pathInside(root, dir)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Every operation goes through r, which refuses to leave the root whatever the symbolic
	// links on the way say.
	r, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("opening the storage root: %w", err)
	}
	defer r.Close()
	if op == opCreate {
		return createDir(r, rel, dir)
	}
	return deleteDir(r, rel, dir)
}

func parseHelperArgs(args []string) (op helperOp, dir, root string, err error) {
	if len(args) == 0 {
		return "", "", "", errors.New(helperUsage)
	}
	op = helperOp(args[0])
	if op != opCreate && op != opDelete {
		return "", "", "", fmt.Errorf("unknown operation %q; %s", args[0], helperUsage)
	}
	fs := flag.NewFlagSet("local-path-helper "+string(op), flag.ContinueOnError)
	fs.StringVar(&dir, "dir", "", "the volume's directory, inside ROOT")
	fs.StringVar(&root, "root", helperRoot, "the node's storage directory, as mounted in the helper pod")
	if err := fs.Parse(args[1:]); err != nil {
		return "", "", "", err
	}
	if fs.NArg() > 0 {
		return "", "", "", fmt.Errorf("unexpected arguments %q; %s", fs.Args(), helperUsage)
	}
	if dir == "" {
		return "", "", "", fmt.Errorf("--dir is required; %s", helperUsage)
	}
	return op, dir, root, nil
}

// pathInside is dir relative to root, which it must lie strictly inside, judged on the names
// alone: symbolic links are os.Root's to refuse.
func pathInside(root, dir string) (string, error) {
	if !filepath.IsAbs(root) {
		return "", fmt.Errorf("--root %q is not an absolute path", root)
	}
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("--dir %q is not an absolute path", dir)
	}
	if slices.Contains(strings.Split(dir, "/"), "..") {
		return "", fmt.Errorf("refusing --dir %q: it contains ..", dir)
	}
	rel, err := filepath.Rel(root, dir)
	switch {
	case err != nil || rel == ".." || strings.HasPrefix(rel, "../"):
		return "", fmt.Errorf("refusing --dir %q: it is outside the storage root %s", dir, root)
	case rel == ".":
		return "", fmt.Errorf("refusing --dir %q: it is the storage root itself, not a directory in it", dir)
	}
	return rel, nil
}

func createDir(r *os.Root, rel, dir string) error {
	if err := checkDir(r, rel, dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := r.MkdirAll(rel, 0o777); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	// MkdirAll's mode went through the umask.
	fi, err := r.Lstat(rel)
	if err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if fi.Mode().Perm() != 0o777 {
		if err := r.Chmod(rel, 0o777); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	klog.InfoS("Created volume directory", "dir", dir)
	return nil
}

func deleteDir(r *os.Root, rel, dir string) error {
	err := checkDir(r, rel, dir)
	if errors.Is(err, fs.ErrNotExist) {
		klog.InfoS("Volume directory already gone", "dir", dir)
		return nil
	}
	if err != nil {
		return err
	}
	if err := r.RemoveAll(rel); err != nil {
		return fmt.Errorf("deleting %s: %w", dir, err)
	}
	klog.InfoS("Deleted volume directory", "dir", dir)
	return nil
}

// checkDir fails unless dir, rel in r, is a directory: a link there, even one os.Root
// would follow inside the root, would make create and delete act on another volume's
// directory. A missing dir is an error wrapping fs.ErrNotExist.
func checkDir(r *os.Root, rel, dir string) error {
	fi, err := r.Lstat(rel)
	switch {
	case err != nil:
		return fmt.Errorf("inspecting %s: %w", dir, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("refusing %s: it is a symbolic link", dir)
	case !fi.IsDir():
		return fmt.Errorf("refusing %s: it exists and is not a directory", dir)
	}
	return nil
}
