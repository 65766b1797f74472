package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// checkNodeBench checks what every bench that starts ketch nodes needs before it touches the
// host: root, an executable ketch binary (*bin is made absolute) and the killall script (*killall
// is resolved). It returns the binary's file info for unchangedBinary.
func checkNodeBench(bin, killall *string) (os.FileInfo, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("must run as root: ketch nodes run containers and set up the pod network (try sudo)")
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		return nil, fmt.Errorf("--ketch-bin: %w", err)
	}
	*bin = abs
	info, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("--ketch-bin: %w", err)
	} else if info.IsDir() || info.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("--ketch-bin: %s is not an executable file", abs)
	}
	if *killall, err = findKillall(*killall, abs); err != nil {
		return nil, err
	}
	return info, nil
}

// unchangedBinary fails when bin is no longer the file checkNodeBench saw: the numbers would
// mix two builds.
func unchangedBinary(bin string, before os.FileInfo) error {
	if st, err := os.Stat(bin); err != nil || st.Size() != before.Size() || !st.ModTime().Equal(before.ModTime()) {
		return fmt.Errorf("%s changed during the run (rebuilt?); the numbers mix two builds, run again", bin)
	}
	return nil
}

// interruptible is a context that the first Ctrl-C or SIGTERM cancels, so the bench cleans up;
// a second one kills the bench at once.
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

// claimHost takes the host lock, which keeps out the tests and benches that take it, and then
// checks that no ketch node started by hand runs either. unlock releases the lock.
func claimHost(ctx context.Context, logf func(string, ...any)) (unlock func(), err error) {
	unlock, err = lockHost(ctx, logf)
	if err != nil {
		return nil, err
	}
	if err := hostFree(); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// publish prints a bench's report section and, when out is set, writes it between its markers
// in out.
func publish(out, begin, end, section string, elapsed time.Duration, logf func(string, ...any)) error {
	fmt.Print(section)
	if out == "" {
		return nil
	}
	if err := writeMarkedSection(out, begin, end, section); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	logf("wrote %s (run took %s)", out, elapsed.Round(time.Second))
	return nil
}
