package cmd

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ketch-k8s/ketch/internal/bench/report"
)

// interruptible is a context that the first Ctrl-C or SIGTERM cancels, so the bench cleans up;
// a second one kills the bench at once (its processes die with it: they get a parent-death
// signal).
func interruptible() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

// progressLog is the benches' progress logger: seconds since started, on stderr.
func progressLog(started time.Time) func(string, ...any) {
	return func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, a...))
	}
}

// publish prints a bench's report section and, when out is set, writes it between the markers
// of section name in out.
func publish(out, name, section string, elapsed time.Duration, logf func(string, ...any)) error {
	fmt.Print(section)
	if out == "" {
		return nil
	}
	if err := report.WriteSection(out, name, section); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	logf("wrote %s (run took %s)", out, elapsed.Round(time.Second))
	return nil
}

// makeDataRoot makes a fresh directory under parent for a bench's data dirs, refusing a parent
// in memory.
func makeDataRoot(parent string) (string, error) {
	// Check the filesystem before creating anything, so a refused --data-root leaves no trace.
	existing, err := filepath.Abs(parent)
	if err != nil {
		return "", fmt.Errorf("--data-root: %w", err)
	}
	for {
		if _, err := os.Stat(existing); err == nil || filepath.Dir(existing) == existing {
			break
		}
		existing = filepath.Dir(existing)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(existing, &st); err != nil {
		return "", fmt.Errorf("--data-root: statfs %s: %w", existing, err)
	}
	const tmpfsMagic, ramfsMagic = 0x01021994, 0x858458f6
	if st.Type == tmpfsMagic || st.Type == ramfsMagic {
		return "", fmt.Errorf("--data-root %s is in memory (tmpfs/ramfs), where fsync is free and the numbers meaningless; pick a directory on a real disk", parent)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("--data-root: %w", err)
	}
	dir, err := os.MkdirTemp(parent, "ketch-bench-")
	if err != nil {
		return "", fmt.Errorf("create data root: %w", err)
	}
	return dir, nil
}
