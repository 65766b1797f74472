// Package loadbalancer is the agent's client-side load balancer for kube-apiserver: a local TCP
// proxy that the node's kubelet and kube-proxy talk to instead of one server, so that the node
// keeps working while a server restarts and fails over when the cluster has several servers.
//
// It forwards raw TCP (TLS passes through untouched, so client certificates reach
// kube-apiserver). Every accepted connection is forwarded to the first server that accepts a TCP
// connection, trying the one that worked last first, then the other learned servers, then the
// default server (the one the user gave) as the last resort. Servers that recently failed are
// tried only after all the others; a background health check keeps that set current.
package loadbalancer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

const (
	defaultDialTimeout    = 3 * time.Second
	defaultHealthInterval = 5 * time.Second
)

// LoadBalancer is a local TCP proxy to a set of kube-apiservers.
type LoadBalancer struct {
	listener      net.Listener
	defaultServer string

	// Tunables; tests shorten them before Run.
	dialTimeout    time.Duration
	healthInterval time.Duration

	running atomic.Bool
	wg      sync.WaitGroup // connection handlers and the health check of Run

	mu        sync.Mutex
	closed    bool
	servers   []string // learned servers, in order
	preferred string   // the server that worked last
	failed    map[string]bool
	allDown   bool // logged "no server reachable" and nothing worked since
	conns     map[*proxyConn]struct{}
}

// proxyConn is one proxied connection. server and addr are set once a server accepted it.
type proxyConn struct {
	client net.Conn
	server net.Conn
	addr   string
}

func (c *proxyConn) close() {
	c.client.Close()
	if c.server != nil {
		c.server.Close()
	}
}

// New listens on listenAddr right away (so a port conflict is reported before anything starts)
// and forwards to servers ("host:port"); defaultServer is the address the user gave (--server)
// and is always kept as the last resort even when the learned list does not contain it.
func New(listenAddr, defaultServer string) (*LoadBalancer, error) {
	defaultServer = strings.TrimSpace(defaultServer)
	if _, _, err := net.SplitHostPort(defaultServer); err != nil {
		return nil, fmt.Errorf("load balancer default server %q: %w", defaultServer, err)
	}
	l, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, fmt.Errorf("load balancer: listening on %s: %w", listenAddr, err)
	}
	return &LoadBalancer{
		listener:       l,
		defaultServer:  defaultServer,
		dialTimeout:    defaultDialTimeout,
		healthInterval: defaultHealthInterval,
		failed:         map[string]bool{},
		conns:          map[*proxyConn]struct{}{},
	}, nil
}

// Addr is the listening address, host:port.
func (lb *LoadBalancer) Addr() string { return lb.listener.Addr().String() }

// URL is the address for a kubeconfig: "https://" + Addr().
func (lb *LoadBalancer) URL() string { return "https://" + lb.Addr() }

// Run serves until ctx ends; then it closes the listener and every proxied connection, waits for
// its goroutines and returns nil (also when Close is called). It returns an error if it was already run, or if the listener
// fails for good (it is closed by someone else); transient accept errors (such as running out of
// file descriptors) are retried. Whatever it returns, the LoadBalancer is closed afterwards.
func (lb *LoadBalancer) Run(ctx context.Context) error {
	if !lb.running.CompareAndSwap(false, true) {
		return errors.New("load balancer: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		lb.Close()
		lb.wg.Wait()
	}()
	stop := context.AfterFunc(ctx, func() { lb.Close() })
	defer stop()

	klog.InfoS("Load balancer listening", "address", lb.Addr(), "servers", lb.Servers())
	lb.wg.Go(func() { lb.healthCheck(ctx) })

	var delay time.Duration
	for {
		conn, err := lb.listener.Accept()
		if err != nil {
			if ctx.Err() != nil || lb.isClosed() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("load balancer on %s: listener closed: %w", lb.Addr(), err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			klog.InfoS("Load balancer accept failed; retrying", "address", lb.Addr(), "err", err, "delay", delay)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		lb.wg.Go(func() { lb.handle(ctx, conn) })
	}
}

// Close closes the listener and every proxied connection. Run calls it on its way out; call it
// only to release the port of a LoadBalancer that will never Run. It is idempotent.
func (lb *LoadBalancer) Close() error {
	lb.mu.Lock()
	if lb.closed {
		lb.mu.Unlock()
		return nil
	}
	lb.closed = true
	conns := lb.conns
	lb.conns = map[*proxyConn]struct{}{}
	lb.mu.Unlock()
	err := lb.listener.Close()
	for c := range conns {
		c.close()
	}
	return err
}

func (lb *LoadBalancer) isClosed() bool {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.closed
}

// SetServers replaces the learned servers; proxied connections to servers that are no longer
// candidates are closed, so that their clients reconnect to a live one. The default server stays a
// candidate whatever the list holds. Blank and duplicate entries are dropped.
func (lb *LoadBalancer) SetServers(addrs []string) {
	var learned []string
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		if a != "" && !slices.Contains(learned, a) {
			learned = append(learned, a)
		}
	}

	lb.mu.Lock()
	if slices.Equal(learned, lb.servers) {
		lb.mu.Unlock()
		return
	}
	lb.servers = learned
	if !lb.isCandidateLocked(lb.preferred) {
		lb.preferred = ""
	}
	for a := range lb.failed {
		if !lb.isCandidateLocked(a) {
			delete(lb.failed, a)
		}
	}
	var stale []*proxyConn
	for c := range lb.conns {
		if c.addr != "" && !lb.isCandidateLocked(c.addr) {
			stale = append(stale, c)
			delete(lb.conns, c)
		}
	}
	order := lb.orderLocked()
	lb.mu.Unlock()

	klog.InfoS("Load balancer servers updated", "address", lb.Addr(), "servers", order, "closedConnections", len(stale))
	for _, c := range stale {
		c.close()
	}
}

// Servers is the current candidate list in the order a new connection tries them: the preferred
// server (the last that worked) first, then the other learned servers, then the default server if
// it is not among them; servers that recently failed come after all the others.
func (lb *LoadBalancer) Servers() []string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.orderLocked()
}

// candidatesLocked is the learned servers, the preferred one moved first, and then the default
// server unless learned. The default server is preferred only while nothing was learned.
func (lb *LoadBalancer) candidatesLocked() []string {
	out := make([]string, 0, len(lb.servers)+1)
	if lb.preferred != "" && slices.Contains(lb.servers, lb.preferred) {
		out = append(out, lb.preferred)
	}
	for _, a := range lb.servers {
		if a != lb.preferred {
			out = append(out, a)
		}
	}
	if !slices.Contains(lb.servers, lb.defaultServer) {
		out = append(out, lb.defaultServer)
	}
	return out
}

// orderLocked is the dial order: the candidates that did not fail, then those that did.
func (lb *LoadBalancer) orderLocked() []string {
	cands := lb.candidatesLocked()
	out := make([]string, 0, len(cands))
	for _, a := range cands {
		if !lb.failed[a] {
			out = append(out, a)
		}
	}
	for _, a := range cands {
		if lb.failed[a] {
			out = append(out, a)
		}
	}
	return out
}

func (lb *LoadBalancer) isCandidateLocked(addr string) bool {
	return addr != "" && (addr == lb.defaultServer || slices.Contains(lb.servers, addr))
}

// markFailed records that addr did not accept a connection; it logs once per change.
func (lb *LoadBalancer) markFailed(addr string, err error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if !lb.isCandidateLocked(addr) || lb.failed[addr] {
		return
	}
	lb.failed[addr] = true
	klog.InfoS("Load balancer server unreachable", "address", lb.Addr(), "server", addr, "err", err)
}

// markReachable records that addr accepted a connection; it logs once per change. use makes addr
// the preferred server.
func (lb *LoadBalancer) markReachable(addr string, use bool) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if !lb.isCandidateLocked(addr) {
		return
	}
	if lb.failed[addr] {
		delete(lb.failed, addr)
		klog.InfoS("Load balancer server reachable again", "address", lb.Addr(), "server", addr)
	}
	if !use {
		return
	}
	lb.allDown = false
	if lb.preferred != addr {
		if lb.preferred != "" {
			klog.InfoS("Load balancer switched server", "address", lb.Addr(), "server", addr, "previous", lb.preferred)
		} else {
			klog.InfoS("Load balancer using server", "address", lb.Addr(), "server", addr)
		}
		lb.preferred = addr
	}
}

// track registers c so that Close and SetServers can close it; false if already closed.
func (lb *LoadBalancer) track(c *proxyConn) bool {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.closed {
		return false
	}
	lb.conns[c] = struct{}{}
	return true
}

// attach records that c is forwarded to addr over server; false if addr stopped being a
// candidate while it was dialled, or the LoadBalancer was closed (or c dropped) meanwhile.
func (lb *LoadBalancer) attach(c *proxyConn, addr string, server net.Conn) bool {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if _, ok := lb.conns[c]; !ok || lb.closed || !lb.isCandidateLocked(addr) {
		return false
	}
	c.server, c.addr = server, addr
	return true
}

func (lb *LoadBalancer) untrack(c *proxyConn) {
	lb.mu.Lock()
	delete(lb.conns, c)
	lb.mu.Unlock()
	c.close()
}

// handle forwards one accepted connection.
func (lb *LoadBalancer) handle(ctx context.Context, client net.Conn) {
	c := &proxyConn{client: client}
	if !lb.track(c) {
		client.Close()
		return
	}
	defer lb.untrack(c)
	server, err := lb.dial(ctx, c)
	if err != nil {
		klog.V(4).InfoS("Load balancer dropping connection", "address", lb.Addr(), "client", client.RemoteAddr(), "err", err)
		return
	}
	pipe(client, server)
}

// dial connects c to the first server that accepts, in dial order.
func (lb *LoadBalancer) dial(ctx context.Context, c *proxyConn) (net.Conn, error) {
	lb.mu.Lock()
	order := lb.orderLocked()
	lb.mu.Unlock()
	d := net.Dialer{Timeout: lb.dialTimeout}
	var errs []error
	for _, addr := range order {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if ctx.Err() != nil {
			if conn != nil {
				conn.Close()
			}
			return nil, ctx.Err()
		}
		if err != nil {
			lb.markFailed(addr, err)
			errs = append(errs, err)
			continue
		}
		if !lb.attach(c, addr, conn) {
			conn.Close()
			if lb.isClosed() {
				return nil, errors.New("load balancer closed")
			}
			continue
		}
		lb.markReachable(addr, true)
		return conn, nil
	}
	err := fmt.Errorf("no server reachable: %w", errors.Join(errs...))
	lb.mu.Lock()
	if !lb.allDown {
		lb.allDown = true
		klog.InfoS("Load balancer has no reachable server; closing connections until one is back", "address", lb.Addr(), "servers", order)
	}
	lb.mu.Unlock()
	return nil, err
}

// pipe copies both ways until both directions are done. A clean EOF on one side is forwarded as
// a half-close (FIN) to the other; an error tears down both connections.
func pipe(client, server net.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		copyHalf(server, client)
	}()
	copyHalf(client, server)
	<-done
}

func copyHalf(dst, src net.Conn) {
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		src.Close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	dst.Close()
	src.Close()
}

// healthCheck periodically connects to every candidate and records which are reachable, so that
// a recovered server is used again and a dead one is skipped before a client hits it.
func (lb *LoadBalancer) healthCheck(ctx context.Context) {
	t := time.NewTicker(lb.healthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lb.mu.Lock()
		cands := lb.candidatesLocked()
		lb.mu.Unlock()
		var wg sync.WaitGroup
		for _, addr := range cands {
			wg.Go(func() {
				d := net.Dialer{Timeout: lb.dialTimeout}
				conn, err := d.DialContext(ctx, "tcp", addr)
				switch {
				case ctx.Err() != nil:
				case err != nil:
					lb.markFailed(addr, err)
				default:
					lb.markReachable(addr, false)
				}
				if conn != nil {
					conn.Close()
				}
			})
		}
		wg.Wait()
	}
}
