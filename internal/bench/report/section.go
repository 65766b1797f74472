// Package report writes the benchmarks' results: each benchmark owns one section of a markdown
// file (docs/benchmarks.md), between markers that a run replaces, and formats its numbers the
// same way as the others.
package report

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// BeginMarker and EndMarker enclose the section of the benchmark called name.
func BeginMarker(name string) string { return "<!-- " + name + ":begin -->" }
func EndMarker(name string) string   { return "<!-- " + name + ":end -->" }

// WriteSection replaces the text between the markers of section name in the file at path,
// creating the file or the markers if needed, and leaves everything else in the file byte for
// byte as it was.
func WriteSection(path, name, section string) error {
	beginMarker, endMarker := BeginMarker(name), EndMarker(name)
	block := beginMarker + "\n" + section + endMarker
	old, err := os.ReadFile(path)
	mode := fs.FileMode(0o644)
	var content []byte
	switch {
	case errors.Is(err, fs.ErrNotExist):
		content = []byte("# Benchmarks\n\n" + block + "\n")
	case err != nil:
		return err
	default:
		if st, err := os.Stat(path); err == nil {
			mode = st.Mode().Perm()
		}
		begin := bytes.Index(old, []byte(beginMarker))
		end := bytes.Index(old, []byte(endMarker))
		switch {
		case begin < 0 && end < 0:
			content = append([]byte{}, old...)
			if len(content) > 0 && !bytes.HasSuffix(content, []byte("\n")) {
				content = append(content, '\n')
			}
			content = append(content, "\n"+block+"\n"...)
		case begin < 0 || end < begin:
			return fmt.Errorf("markers %s and %s are missing or out of order; fix the file by hand", beginMarker, endMarker)
		default:
			content = append(append(append([]byte{}, old[:begin]...), block...), old[end+len(endMarker):]...)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// Write a sibling and rename so an interrupted run never leaves a truncated file.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".benchmarks-*.md")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// RunLines are the lines every section starts its notes with: the command that made it, and
// when.
func RunLines(subcommand string, args []string, date time.Time, elapsed time.Duration) string {
	return fmt.Sprintf("- Command: `%s`\n- Date: %s (the run took %s)\n", CommandLine(subcommand, args),
		date.UTC().Format("2006-01-02 15:04 MST"), elapsed.Round(time.Second))
}

// CommandLine reproduces a subcommand's invocation for the report; under `go run` the binary is
// a temporary file, so the reproducible form is the go run command.
func CommandLine(subcommand string, args []string) string {
	prog := filepath.Base(os.Args[0])
	if strings.Contains(os.Args[0], "go-build") {
		prog = "go run ./tools/ketch-bench"
	}
	parts := []string{prog, subcommand}
	for _, a := range args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,:@+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
