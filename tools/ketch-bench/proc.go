package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"go.uber.org/zap"
)

// server is one datastore process started by the bench.
type server struct {
	name     string
	endpoint string
	logPath  string
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	waitErr  error         // valid after done is closed
	stopOnce sync.Once
}

// startServer runs bin with the `datastore` command line contract on a free loopback port.
// Output goes to logPath so a quiet run stays quiet but failures can still be explained.
func startServer(name, bin string, subcommand []string, dataDir, logPath string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("pick client port: %w", err)
	}
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create server log: %w", err)
	}
	defer logf.Close()

	args := append(append([]string{}, subcommand...), "--data-dir", dataDir, "--listen-client-urls", endpoint)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: a terminal Ctrl-C reaches only the bench, which then stops the
		// server in order instead of racing it.
		Setpgid: true,
		// If the bench itself is SIGKILLed, the server must not linger holding its port and dir.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &server{name: name, endpoint: endpoint, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// waitReady polls the Status RPC, which is the datastore's documented readiness signal.
func (s *server) waitReady(ctx context.Context, timeout time.Duration) error {
	cli, err := newClient(s.endpoint)
	if err != nil {
		return fmt.Errorf("readiness client: %w", err)
	}
	defer cli.Close()
	deadline := time.Now().Add(timeout)
	for {
		if s.exited() {
			return fmt.Errorf("%s exited before becoming ready (%v); log tail:\n%s", s.name, s.waitErr, s.logTail())
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := cli.Status(sctx, s.endpoint)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %w; log tail:\n%s", s.name, timeout, err, s.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM so the server can close its database cleanly, and SIGKILL if it does not
// exit in time. It only ever signals the PID this bench started.
func (s *server) stop() error {
	var err error
	s.stopOnce.Do(func() {
		if s.exited() {
			return
		}
		if e := s.cmd.Process.Signal(syscall.SIGTERM); e != nil && !errors.Is(e, os.ErrProcessDone) {
			err = fmt.Errorf("SIGTERM %s (pid %d): %w", s.name, s.pid(), e)
		}
		select {
		case <-s.done:
			return
		case <-time.After(15 * time.Second):
		}
		_ = s.cmd.Process.Kill()
		select {
		case <-s.done:
			err = fmt.Errorf("%s (pid %d) ignored SIGTERM for 15s and was killed", s.name, s.pid())
		case <-time.After(5 * time.Second):
			err = fmt.Errorf("%s (pid %d) did not exit after SIGKILL", s.name, s.pid())
		}
	})
	return err
}

func (s *server) logTail() string {
	const max = 4096
	f, err := os.Open(s.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	if len(b) == 0 {
		return "(empty)"
	}
	return string(b)
}

// memStats are the kernel's view of a process's memory, in bytes.
type memStats struct {
	rss, hwm, pss uint64
}

// readMemStats reads VmRSS/VmHWM and PSS. PSS is reported too because RSS over-counts pages
// shared with other processes (e.g. the page cache of an mmapped db file mapped elsewhere).
func readMemStats(pid int) (memStats, error) {
	var m memStats
	status, err := readKBFields(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:", "VmHWM:")
	if err != nil {
		return m, err
	}
	rollup, err := readKBFields(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
	if err != nil {
		return m, err
	}
	return memStats{rss: status["VmRSS:"], hwm: status["VmHWM:"], pss: rollup["Pss:"]}, nil
}

// readKBFields returns the named "Name:   123 kB" fields of a /proc file, converted to bytes.
func readKBFields(path string, names ...string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := make(map[string]uint64, len(names))
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || !want[fields[0]] {
			continue
		}
		kb, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: parse %s: %w", path, fields[0], err)
		}
		out[fields[0]] = kb * 1024
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("%s: no %s field", path, n)
		}
	}
	return out, nil
}

// freePort asks the kernel for an unused loopback port. The port is released before use, so
// another process could take it; on a dev machine that is rare enough to not matter.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// newClient opens one gRPC connection to endpoint. Every request in the bench goes through
// clients made here so both targets see identical client settings. The kubernetes wrapper is
// used so that List and OptimisticPut are the exact calls kube-apiserver makes.
func newClient(endpoint string) (*kubernetes.Client, error) {
	return kubernetes.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
}
