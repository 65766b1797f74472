package daemon

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

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
