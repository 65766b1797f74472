package daemon

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// RedirectLogs sends everything the components write to stderr (klog, containerd's logrus, Go
// runtime panics) to logPath, unless debug. It returns where ketch's own lines go: the original
// stderr. Redirecting the file descriptor, not just klog's writer, catches every library.
func RedirectLogs(logPath string, debug bool) (*os.File, error) {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	if debug {
		fs.Set("v", "2")
		return os.Stderr, nil
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening log file: %w", err)
	}
	defer f.Close()
	saved, err := syscall.Dup(int(os.Stderr.Fd()))
	if err != nil {
		return nil, fmt.Errorf("duplicating stderr: %w", err)
	}
	if err := syscall.Dup3(int(f.Fd()), int(os.Stderr.Fd()), 0); err != nil {
		return nil, fmt.Errorf("redirecting stderr to %s: %w", logPath, err)
	}
	return os.NewFile(uintptr(saved), "stderr"), nil
}

// ReportedError is an error a command has already shown the user.
type ReportedError struct{ Err error }

func (e ReportedError) Error() string { return e.Err.Error() }
func (e ReportedError) Unwrap() error { return e.Err }

// Console is what a long-running command shows the user: start-up phases and failures, while
// the components' logs go to the log file.
type Console struct {
	Progress
	logFile string
	debug   bool
}

// OpenConsole sends the logs to <dataDir>/logs/ketch.log (unless debug) and prints how ketch
// adapts to the host.
func OpenConsole(dataDir string, debug bool, start time.Time, hostMessages []string) (*Console, error) {
	logFile := filepath.Join(dataDir, "logs", "ketch.log")
	out, err := RedirectLogs(logFile, debug)
	if err != nil {
		return nil, err
	}
	for _, msg := range hostMessages {
		fmt.Fprintf(out, "ketch: %s\n", msg)
	}
	return &Console{Progress: Progress{W: out, Start: start}, logFile: logFile, debug: debug}, nil
}

// Out is the user's terminal.
func (c *Console) Out() io.Writer { return c.W }

// Report logs a failure and shows it on the terminal, once; use as defer c.Report(what, &err).
func (c *Console) Report(what string, err *error) {
	if *err == nil {
		return
	}
	klog.ErrorS(*err, what)
	if !c.debug {
		fmt.Fprintf(c.W, "ketch: %v (log: %s)\n", *err, c.logFile)
		*err = ReportedError{Err: *err}
	}
}
