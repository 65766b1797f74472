package main

import (
	"bufio"
	"context"
	"errors"
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

// ketchNode is one `ketch server` process. Its start-up lines are read from a pipe as they are
// written, so each is timed when the server prints it.
type ketchNode struct {
	dirs     *nodeDirs
	outPath  string
	cmd      *exec.Cmd
	start    time.Time
	pipe     *os.File
	ready    chan struct{} // closed when the node Ready line arrives
	done     chan struct{} // closed when the process has exited
	waitErr  error
	stopOnce sync.Once
	stopTook time.Duration
	stopErr  error

	mu       sync.Mutex
	phases   []phaseTime
	lines    []string
	sawReady bool
}

func startNode(bin string, dirs *nodeDirs, outPath string) (*ketchNode, error) {
	out, err := os.Create(outPath)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		out.Close()
		return nil, err
	}
	cmd := exec.Command(bin, "server", "--data-dir", dirs.data, "--run-dir", dirs.run,
		"--write-kubeconfig", filepath.Join(dirs.data, "admin.yaml"), "--node-name", benchNodeName)
	// An *os.File, not a Writer: Wait must not wait for the shims, which may inherit the pipe.
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // a terminal Ctrl-C reaches only the bench, which stops the server
		Pdeathsig: syscall.SIGTERM, // and if the bench dies, the server stops cleanly
	}
	n := &ketchNode{dirs: dirs, outPath: outPath, cmd: cmd, pipe: pr, ready: make(chan struct{}), done: make(chan struct{})}
	n.start = time.Now()
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		out.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go n.read(pr, out)
	go func() {
		n.waitErr = cmd.Wait()
		close(n.done)
	}()
	return n, nil
}

func (n *ketchNode) read(pr io.Reader, out *os.File) {
	defer out.Close()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		at := time.Since(n.start)
		line := sc.Text()
		fmt.Fprintln(out, line)
		n.mu.Lock()
		n.lines = append(n.lines, line)
		if name, printed, ok := parsePhaseLine(line); ok {
			n.phases = append(n.phases, phaseTime{name: name, observed: at, printed: printed})
			if name == readyPhase && !n.sawReady {
				n.sawReady = true
				close(n.ready)
			}
		}
		n.mu.Unlock()
	}
}

// parsePhaseLine parses a start-up line, `ketch: <phase>   <seconds>s`.
func parsePhaseLine(line string) (name string, printed time.Duration, ok bool) {
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

func (n *ketchNode) pid() int { return n.cmd.Process.Pid }

func (n *ketchNode) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

func (n *ketchNode) phaseTimes() []phaseTime {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.phases)
}

// notes are the server's other `ketch:` lines, such as host check messages.
func (n *ketchNode) notes() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, l := range n.lines {
		if _, _, ok := parsePhaseLine(l); !ok && strings.HasPrefix(l, "ketch: ") && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

func (n *ketchNode) waitReady(ctx context.Context, timeout time.Duration) error {
	select {
	case <-n.ready:
		return nil
	case <-n.done:
		return n.exitError()
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		return fmt.Errorf("node not Ready %s after exec; output:\n%s\nlog tail:\n%s", timeout, n.output(), n.logTail(40))
	}
}

func (n *ketchNode) exitError() error {
	<-n.done
	return fmt.Errorf("ketch server exited unexpectedly (%v); output:\n%s\nlog tail:\n%s", n.waitErr, n.output(), n.logTail(40))
}

func (n *ketchNode) output() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.lines, "\n")
}

func (n *ketchNode) logTail(lines int) string {
	b, err := os.ReadFile(filepath.Join(n.dirs.data, "logs", "ketch.log"))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

// stop sends SIGTERM, and SIGKILL if the server has not exited after timeout. It returns how
// long a clean stop took.
func (n *ketchNode) stop(timeout time.Duration) (time.Duration, error) {
	n.stopOnce.Do(func() {
		if n.exited() {
			return
		}
		t0 := time.Now()
		if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			n.stopErr = fmt.Errorf("SIGTERM ketch server (pid %d): %w", n.pid(), err)
		}
		select {
		case <-n.done:
			n.stopTook = time.Since(t0)
			return
		case <-time.After(timeout):
		}
		_ = n.cmd.Process.Kill()
		<-n.done
		n.stopErr = fmt.Errorf("ketch server (pid %d) did not stop within %s of SIGTERM and was killed; log tail:\n%s", n.pid(), timeout, n.logTail(40))
	})
	return n.stopTook, n.stopErr
}
