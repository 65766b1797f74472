package harness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ReadyPhase is the start-up line `ketch server` and `ketch agent` print once their node is
// Ready.
const ReadyPhase = "node Ready"

// ServerPhases are the start-up lines `ketch server` prints, in order.
var ServerPhases = []string{"datastore ready", "apiserver ready", "node registered", ReadyPhase}

// ServerConfig is one start of `ketch server`.
type ServerConfig struct {
	Bin     string
	DataDir string
	// RunDir holds containerd's shim sockets, whose paths are limited to 108 bytes: keep it
	// short.
	RunDir     string
	Kubeconfig string   // --write-kubeconfig
	Args       []string // more flags
	// Output is the file the server's stdout and stderr are appended to, line by line.
	Output string
}

// Socket is the node's containerd socket, as `ketch images --address` takes it.
func (c ServerConfig) Socket() string {
	return filepath.Join(c.RunDir, "containerd", "containerd.sock")
}

// PhaseTime is one start-up line: when it was read, counted from exec, and the time the
// process printed, counted from its own start (after the Go runtime and flag parsing).
type PhaseTime struct {
	Name              string
	Observed, Printed time.Duration
}

// Server is a running `ketch server`. Its output is read from a pipe as it is written, so that
// each start-up line is timed when the server prints it.
type Server struct {
	*Process
	Config  ServerConfig
	Started time.Time // just before exec
	pipe    *os.File
	ready   chan struct{} // closed when the node Ready line arrives

	mu       sync.Mutex
	phases   []PhaseTime
	lines    []string
	sawReady bool
}

// StartServer starts `ketch server`. Close the Server once the node's processes are gone.
func StartServer(cfg ServerConfig) (*Server, error) {
	out, err := os.OpenFile(cfg.Output, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("server output: %w", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("server output pipe: %w", err)
	}
	args := append([]string{"server", "--data-dir", cfg.DataDir, "--run-dir", cfg.RunDir,
		"--write-kubeconfig", cfg.Kubeconfig}, cfg.Args...)
	cmd := exec.Command(cfg.Bin, args...)
	// An *os.File, not a Writer: Wait must not wait for the shims, which may inherit the pipe.
	cmd.Stdout, cmd.Stderr = pw, pw
	s := &Server{Config: cfg, pipe: pr, ready: make(chan struct{}), Started: time.Now()}
	// SIGTERM if the caller dies: the server then stops cleanly.
	s.Process, err = Start(cmd, syscall.SIGTERM)
	pw.Close()
	if err != nil {
		pr.Close()
		out.Close()
		return nil, err
	}
	go s.read(pr, out)
	return s, nil
}

func (s *Server) read(pr io.Reader, out *os.File) {
	defer out.Close()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		at := time.Since(s.Started)
		line := sc.Text()
		fmt.Fprintln(out, line)
		s.mu.Lock()
		s.lines = append(s.lines, line)
		if name, printed, ok := ParsePhaseLine(line); ok {
			s.phases = append(s.phases, PhaseTime{Name: name, Observed: at, Printed: printed})
			if name == ReadyPhase && !s.sawReady {
				s.sawReady = true
				close(s.ready)
			}
		}
		s.mu.Unlock()
	}
}

// ParsePhaseLine parses a start-up line, `ketch: <phase>   <seconds>s`.
func ParsePhaseLine(line string) (name string, printed time.Duration, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(line), "ketch: ")
	if !found {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, ' ')
	if i < 0 || !strings.HasSuffix(rest, "s") {
		return "", 0, false
	}
	secs, err := strconv.ParseFloat(strings.TrimSuffix(rest[i+1:], "s"), 64)
	name = strings.TrimSpace(rest[:i])
	if err != nil || name == "" || secs < 0 {
		return "", 0, false
	}
	return name, time.Duration(secs * float64(time.Second)), true
}

// Notes are the `ketch:` lines of out that are not start-up lines, such as host check
// messages, each once.
func Notes(out []string) []string {
	var notes []string
	for _, l := range out {
		if _, _, ok := ParsePhaseLine(l); !ok && strings.HasPrefix(l, "ketch: ") && !slices.Contains(notes, l) {
			notes = append(notes, l)
		}
	}
	return notes
}

// WaitReady waits until the server prints its node Ready line. It fails early when the server
// exits, and when ctx ends, with the server's output and log tail.
func (s *Server) WaitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-s.Done():
		return s.ExitError()
	case <-ctx.Done():
		return fmt.Errorf("node not Ready %s after exec: %w; output:\n%s\nlog tail:\n%s",
			time.Since(s.Started).Round(time.Second), ctx.Err(), s.Output(), s.LogTail(40))
	}
}

// ExitError waits for the server to exit and describes how it did, with its output and log
// tail: for a server that was not meant to exit.
func (s *Server) ExitError() error {
	err := s.Wait()
	return fmt.Errorf("ketch server exited unexpectedly (%v); output:\n%s\nlog tail:\n%s", err, s.Output(), s.LogTail(40))
}

// Phases are the start-up lines read so far.
func (s *Server) Phases() []PhaseTime {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.phases)
}

// Notes are the server's `ketch:` lines so far that are not start-up lines.
func (s *Server) Notes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Notes(s.lines)
}

// Output is what this server printed so far.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// LogTail is the last lines of the server's log file.
func (s *Server) LogTail(lines int) string {
	return Tail(filepath.Join(s.Config.DataDir, "logs", "ketch.log"), lines)
}

// Stop sends SIGTERM, and SIGKILL if the server has not exited after grace. It returns how
// long a clean stop took.
func (s *Server) Stop(grace time.Duration) (time.Duration, error) {
	took, err := s.Process.Stop(syscall.SIGTERM, grace)
	if err != nil {
		return took, fmt.Errorf("ketch server: %w; log tail:\n%s", err, s.LogTail(40))
	}
	return took, nil
}

// Close closes the output pipe. Call it once the node's processes are gone: one that inherited
// the pipe (the shims may) would get SIGPIPE when it next writes to it.
func (s *Server) Close() { s.pipe.Close() }

// Tail is the last lines of the file at path, or why it cannot be read.
func Tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}
