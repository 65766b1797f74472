// Package console is what a ketch process shows its user and where its logs go: klog is set up
// here once per process, a long-running command's stderr is redirected here (and only here) to
// its log file, and start-up phases and failures are printed to the user's terminal.
package console

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	runtimedebug "runtime/debug"
	"strconv"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// SetupLogging sets klog up for the whole process: to stderr, at the given verbosity (0: the
// warnings, errors and few info lines ketch and the components log by default). Call it once,
// first thing in a command.
func SetupLogging(verbosity int) {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	fs.Set("logtostderr", "true")
	fs.Set("v", strconv.Itoa(verbosity))
}

// ReportedError is an error a command has already shown the user.
type ReportedError struct{ Err error }

func (e ReportedError) Error() string { return e.Err.Error() }
func (e ReportedError) Unwrap() error { return e.Err }

// Console is the terminal of a long-running command: its start-up phases and failures, while
// the components' logs go to the log file.
type Console struct {
	out     io.Writer
	start   time.Time
	logFile string
	debug   bool
}

// New is a console that prints to out, for commands (and tests) that keep stderr as it is.
func New(out io.Writer, start time.Time) *Console {
	return &Console{out: out, start: start, logFile: "stderr", debug: true}
}

// Open sends everything the process writes to stderr (klog, containerd's logrus, Go runtime
// panics) to logFile, unless debug. Redirecting the file descriptor, not only klog's writer,
// catches every library. Lines written to the console go to the original stderr; start is when
// the command started, for the phase times.
func Open(logFile string, debug bool, start time.Time) (*Console, error) {
	c := &Console{out: os.Stderr, start: start, logFile: logFile, debug: debug}
	if debug {
		return c, nil
	}
	if err := os.MkdirAll(filepath.Dir(logFile), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening log file: %w", err)
	}
	defer f.Close()
	saved, err := syscall.Dup(int(os.Stderr.Fd()))
	if err != nil {
		return nil, fmt.Errorf("duplicating stderr: %w", err)
	}
	if err := syscall.Dup3(int(f.Fd()), int(os.Stderr.Fd()), 0); err != nil {
		return nil, fmt.Errorf("redirecting stderr to %s: %w", logFile, err)
	}
	out := os.NewFile(uintptr(saved), "stderr")
	// A fatal error (an unrecovered panic in any component, concurrent map writes) would
	// otherwise end the process with nothing on the terminal: show it there too.
	if err := runtimedebug.SetCrashOutput(out, runtimedebug.CrashOptions{}); err != nil {
		klog.InfoS("Crash reports go to the log file only", "err", err)
	}
	c.out = out
	return c, nil
}

// Printf prints one line to the user's terminal, after "ketch: ".
func (c *Console) Printf(format string, a ...any) {
	fmt.Fprintf(c.out, "ketch: "+format+"\n", a...)
}

// Phase prints one start-up phase with the time since start.
func (c *Console) Phase(format string, a ...any) {
	fmt.Fprintf(c.out, "ketch: %-28s %6.1fs\n", fmt.Sprintf(format, a...), time.Since(c.start).Seconds())
}

// Report logs a failure and shows it on the terminal, once; use as defer c.Report(what, &err).
func (c *Console) Report(what string, err *error) {
	if *err == nil {
		return
	}
	klog.ErrorS(*err, what)
	if !c.debug {
		fmt.Fprintf(c.out, "ketch: %v (log: %s)\n", *err, c.logFile)
		*err = ReportedError{Err: *err}
	}
}
