package loadbalancer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// backend is a real TCP server on 127.0.0.1 that can be stopped and restarted on the same port.
// By default it answers every connection with its name and a newline, then echoes what it reads
// and half-closes once the client did.
type backend struct {
	t       *testing.T
	name    string
	addr    string
	handler func(net.Conn)

	mu    sync.Mutex
	l     net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	return newBackendWith(t, name, func(c net.Conn) {
		io.WriteString(c, name+"\n")
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
	})
}

func newBackendWith(t *testing.T, name string, handler func(net.Conn)) *backend {
	t.Helper()
	b := &backend{t: t, name: name, handler: handler, conns: map[net.Conn]struct{}{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = l.Addr().String()
	b.serve(l)
	t.Cleanup(b.stop)
	return b
}

func (b *backend) serve(l net.Listener) {
	b.mu.Lock()
	b.l = l
	b.mu.Unlock()
	b.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns[c] = struct{}{}
			b.mu.Unlock()
			b.wg.Go(func() {
				defer func() {
					b.mu.Lock()
					delete(b.conns, c)
					b.mu.Unlock()
					c.Close()
				}()
				b.handler(c)
			})
		}
	})
}

// stop closes the listener and every accepted connection, like a server going away.
func (b *backend) stop() {
	b.mu.Lock()
	if b.l != nil {
		b.l.Close()
		b.l = nil
	}
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *backend) restart() {
	b.t.Helper()
	l, err := net.Listen("tcp", b.addr)
	if err != nil {
		b.t.Fatalf("restarting backend %s on %s: %v", b.name, b.addr, err)
	}
	b.serve(l)
}

// startLB creates a load balancer on 127.0.0.1:0 and runs it until stop is called or the test
// ends. stop cancels Run and returns what it returned.
func startLB(t *testing.T, defaultServer string) (lb *LoadBalancer, stop func() error) {
	t.Helper()
	lb, err := New("127.0.0.1:0", defaultServer)
	if err != nil {
		t.Fatal(err)
	}
	lb.dialTimeout = time.Second
	lb.healthInterval = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lb.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(5 * time.Second):
				runErr = errors.New("Run did not return after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return lb, stop
}

// connect opens a connection through lb and reads the backend's name.
func connect(t *testing.T, lb *LoadBalancer) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	c, err := net.Dial("tcp", lb.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	name, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the backend name through the load balancer: %v", err)
	}
	return c, r, strings.TrimSuffix(name, "\n")
}

func nameVia(t *testing.T, lb *LoadBalancer) string {
	t.Helper()
	c, _, name := connect(t, lb)
	c.Close()
	return name
}

// expectClosed checks that c gets EOF or a reset promptly, not a timeout.
func expectClosed(t *testing.T, r io.Reader, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("connection still open")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func failed(lb *LoadBalancer, addr string) bool {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.failed[addr]
}

func TestNew(t *testing.T) {
	lb, err := New("127.0.0.1:0", "10.0.0.1:6443")
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	if !strings.HasPrefix(lb.Addr(), "127.0.0.1:") || lb.URL() != "https://"+lb.Addr() {
		t.Errorf("Addr %q URL %q", lb.Addr(), lb.URL())
	}
	if got := lb.Servers(); !slices.Equal(got, []string{"10.0.0.1:6443"}) {
		t.Errorf("Servers = %v", got)
	}
	if _, err := New(lb.Addr(), "10.0.0.1:6443"); err == nil {
		t.Error("New on a port in use succeeded")
	}
	if _, err := New("127.0.0.1:0", "no-port"); err == nil {
		t.Error("New with a default server without a port succeeded")
	}
}

func TestProxyBothWaysAndHalfClose(t *testing.T) {
	a := newBackend(t, "a")
	lb, _ := startLB(t, a.addr)

	// Client -> server half-close: the backend echoes until it sees our FIN, then sends its own.
	c, r, name := connect(t, lb)
	if name != "a" {
		t.Fatalf("name = %q", name)
	}
	data := make([]byte, 4<<20)
	rand.Read(data)
	writeErr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		writeErr <- err
	}()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echo differs: got %d bytes, sent %d", len(got), len(data))
	}

	// Server -> client half-close: the backend sends and half-closes first, then still reads.
	received := make(chan string, 10)
	h := newBackendWith(t, "h", func(c net.Conn) {
		io.WriteString(c, "hello\n")
		c.(*net.TCPConn).CloseWrite()
		// The load balancer's health checks connect too, and send nothing.
		if b, _ := io.ReadAll(c); len(b) > 0 {
			received <- string(b)
		}
	})
	lb.SetServers([]string{h.addr})
	c, r, name = connect(t, lb)
	if name != "hello" {
		t.Fatalf("got %q", name)
	}
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Fatalf("after the server's FIN: %q, %v", rest, err)
	}
	if _, err := io.WriteString(c, "late data"); err != nil {
		t.Fatalf("writing after the server's half-close: %v", err)
	}
	c.(*net.TCPConn).CloseWrite()
	select {
	case s := <-received:
		if s != "late data" {
			t.Fatalf("backend received %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("backend did not get the client's data and FIN")
	}
}

func TestFailover(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	lb, _ := startLB(t, a.addr)
	lb.SetServers([]string{a.addr, b.addr})
	if got := nameVia(t, lb); got != "a" {
		t.Fatalf("first connection went to %q", got)
	}

	// An open connection to a sees a stopped a close it; new connections go to b.
	c, r, _ := connect(t, lb)
	a.stop()
	expectClosed(t, r, c)
	if got := nameVia(t, lb); got != "b" {
		t.Fatalf("after stopping a: %q", got)
	}
	if got := lb.Servers(); !slices.Equal(got, []string{b.addr, a.addr}) {
		t.Errorf("Servers = %v", got)
	}

	// a comes back: the health check notices, b stays preferred.
	a.restart()
	waitFor(t, "the health check to see a back", func() bool { return !failed(lb, a.addr) })
	if got := nameVia(t, lb); got != "b" {
		t.Fatalf("after restarting a: %q", got)
	}

	// b goes away: the health check notices, and connections go to a again.
	b.stop()
	waitFor(t, "the health check to see b down", func() bool { return failed(lb, b.addr) })
	if got := lb.Servers(); !slices.Equal(got, []string{a.addr, b.addr}) {
		t.Errorf("Servers = %v", got)
	}
	if got := nameVia(t, lb); got != "a" {
		t.Fatalf("after stopping b: %q", got)
	}
}

func TestAllDown(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	lb, _ := startLB(t, a.addr)
	lb.SetServers([]string{b.addr})
	a.stop()
	b.stop()
	for range 3 {
		c, err := net.Dial("tcp", lb.Addr())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		expectClosed(t, c, c)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("closing took %v", d)
		}
		c.Close()
	}
	// The default server comes back: it is used without restarting the load balancer, even
	// before the health check ran.
	a.restart()
	if got := nameVia(t, lb); got != "a" {
		t.Fatalf("got %q", got)
	}
	b.restart()
	waitFor(t, "b to be preferred again", func() bool { return lb.Servers()[0] == b.addr })
}

func TestSetServers(t *testing.T) {
	a, b, d := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "d")
	lb, _ := startLB(t, d.addr)
	if got := nameVia(t, lb); got != "d" {
		t.Fatalf("with no learned servers: %q", got)
	}
	cd, rd, _ := connect(t, lb) // to the default server

	lb.SetServers([]string{a.addr, " ", b.addr, a.addr})
	if got := lb.Servers(); !slices.Equal(got, []string{a.addr, b.addr, d.addr}) {
		t.Fatalf("Servers = %v", got)
	}
	ca, ra, name := connect(t, lb)
	if name != "a" {
		t.Fatalf("learned servers are tried before the default one: got %q", name)
	}

	lb.SetServers([]string{b.addr})
	expectClosed(t, ra, ca)
	if got := lb.Servers(); !slices.Equal(got, []string{b.addr, d.addr}) {
		t.Fatalf("Servers = %v", got)
	}
	if got := nameVia(t, lb); got != "b" {
		t.Fatalf("after removing a: %q", got)
	}

	// The connection to the default server was kept through all of this.
	if _, err := io.WriteString(cd, "ping\n"); err != nil {
		t.Fatal(err)
	}
	if s, err := rd.ReadString('\n'); err != nil || s != "ping\n" {
		t.Fatalf("connection to the default server: %q, %v", s, err)
	}

	cb, rb, _ := connect(t, lb)
	lb.SetServers(nil)
	expectClosed(t, rb, cb)
	if got := lb.Servers(); !slices.Equal(got, []string{d.addr}) {
		t.Fatalf("Servers = %v", got)
	}
	if got := nameVia(t, lb); got != "d" {
		t.Fatalf("with the default server only: %q", got)
	}
}

func TestRunStopsCleanly(t *testing.T) {
	before := runtime.NumGoroutine()
	a := newBackend(t, "a")
	lb, stop := startLB(t, a.addr)
	var conns []net.Conn
	var readers []io.Reader
	for range 5 {
		c, r, _ := connect(t, lb)
		conns, readers = append(conns, c), append(readers, r)
	}
	// A client whose server is still being dialled is closed as well (TEST-NET-1 does not answer;
	// if the dial fails at once, the connection goes to a instead).
	lb.SetServers([]string{"192.0.2.1:6443"})
	c, err := net.Dial("tcp", lb.Addr())
	if err != nil {
		t.Fatal(err)
	}
	conns, readers = append(conns, c), append(readers, c)
	waitFor(t, "the connection to be accepted", func() bool {
		lb.mu.Lock()
		defer lb.mu.Unlock()
		return len(lb.conns) == 6
	})

	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	for i, c := range conns {
		expectClosed(t, readers[i], c)
		c.Close()
	}
	if c, err := net.Dial("tcp", lb.Addr()); err == nil {
		c.Close()
		t.Error("still listening after Run returned")
	}
	if err := lb.Run(context.Background()); err == nil {
		t.Error("a second Run succeeded")
	}
	a.stop()
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before+2 })
}

func TestRunWithCancelledContext(t *testing.T) {
	lb, err := New("127.0.0.1:0", "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := lb.Run(ctx); err != nil {
		t.Fatalf("Run = %v", err)
	}
}
