// Package datastore runs ketch's etcd-API datastore: the mvcc store served over gRPC on the
// configured client URLs. `ketch server` runs it in-process; `ketch datastore` runs it alone.
// docs/datastore.md describes it.
package datastore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/datastore/etcdapi"
	"github.com/ketch-k8s/ketch/pkg/datastore/mvcc"
)

// DBFileName is the datastore's file inside its data dir.
const DBFileName = "datastore.db"

// Config is what `ketch datastore` flags set.
type Config struct {
	DataDir string
	// ListenClientURLs are http://HOST:PORT or unix:///PATH URLs to serve on.
	ListenClientURLs []string
	// Name is the member name MemberList reports.
	Name                        string
	MaxRequestBytes             int
	MaxTxnOps                   int
	WatchProgressNotifyInterval time.Duration
	// HistoryRevisions caps the history kept when no client compacts (0: unlimited).
	HistoryRevisions int64
}

// DefaultHistoryRevisions is the history cap when none is configured: enough for watchers to
// resume after a few minutes of a busy small cluster, small enough for an edge box's disk.
const DefaultHistoryRevisions = 10000

// Datastore is a running datastore.
type Datastore struct {
	store     *mvcc.Store
	grpc      *grpc.Server
	listeners []net.Listener
	// serveErr gets an error naming the URL of each listener that stops serving on its own.
	serveErr chan error
	// stopping is closed when stopping begins: a listener that stops after that has not failed.
	stopping chan struct{}
	stopOnce sync.Once
	stopErr  error
}

// Start validates cfg, opens the store, listens on every client URL and starts serving; Run
// then serves until its context ends. Nothing is started if cfg is invalid or the data dir or an
// address is in use.
func Start(cfg Config) (*Datastore, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("no data dir given (--data-dir)")
	}
	if len(cfg.ListenClientURLs) == 0 {
		return nil, errors.New("no client URL to listen on given (--listen-client-urls)")
	}
	addrs := make([]listenAddr, 0, len(cfg.ListenClientURLs))
	for _, u := range cfg.ListenClientURLs {
		a, err := parseListenURL(u)
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, a)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data dir: %w", err)
	}
	store, err := mvcc.Open(mvcc.Options{Path: filepath.Join(cfg.DataDir, DBFileName), HistoryRevisions: cfg.HistoryRevisions, CheckFile: checkInChild})
	if err != nil {
		return nil, err
	}
	d := &Datastore{store: store, serveErr: make(chan error, len(addrs)), stopping: make(chan struct{})}
	for _, a := range addrs {
		l, err := a.listen()
		if err != nil {
			d.closeListeners()
			store.Close()
			return nil, err
		}
		d.listeners = append(d.listeners, l)
	}
	d.grpc = etcdapi.New(store, etcdapi.Config{
		Name: cfg.Name, ClientURLs: cfg.ListenClientURLs, MaxRequestBytes: cfg.MaxRequestBytes,
		MaxTxnOps: cfg.MaxTxnOps, WatchProgressNotifyInterval: cfg.WatchProgressNotifyInterval,
	})
	for i, l := range d.listeners {
		go d.serve(l, cfg.ListenClientURLs[i])
	}
	rev, compacted := store.Revs()
	klog.InfoS("Datastore serving", "urls", cfg.ListenClientURLs, "dataDir", cfg.DataDir, "revision", rev, "compacted", compacted)
	return d, nil
}

// serve serves on l, the listener of url, and reports on serveErr if it stops before Stop.
func (d *Datastore) serve(l net.Listener, url string) {
	err := d.grpc.Serve(l)
	select {
	case <-d.stopping:
		return
	default:
	}
	if err == nil {
		err = errors.New("the gRPC server stopped")
	}
	d.serveErr <- fmt.Errorf("datastore stopped serving %s: %w", url, err)
}

// Run serves until ctx ends or a listener stops serving on its own, and then stops the datastore
// as Stop does. It returns Stop's result when ctx ended (or Stop was called), and otherwise an
// error naming the listener's URL (joined with Stop's error, if any).
func (d *Datastore) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		klog.InfoS("Stopping datastore")
		return d.Stop()
	case err := <-d.serveErr:
		klog.ErrorS(err, "Stopping datastore: a listener failed")
		return errors.Join(err, d.Stop())
	case <-d.stopping:
		return d.Stop()
	}
}

// Stop stops serving, giving requests in flight a moment to finish, and closes the store. Only
// the first call does anything; every call returns its result. Callers that use Run do not
// need it.
func (d *Datastore) Stop() error {
	d.stopOnce.Do(func() { d.stopErr = d.stop() })
	return d.stopErr
}

func (d *Datastore) stop() error {
	close(d.stopping)
	stopped := make(chan struct{})
	go func() { d.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		// Watch and keepalive streams never end on their own.
		d.grpc.Stop()
		<-stopped
	}
	d.closeListeners()
	return d.store.Close()
}

func (d *Datastore) closeListeners() {
	for _, l := range d.listeners {
		l.Close()
	}
}

// checkInChild runs `ketch datastore check PATH` with this executable: bbolt's consistency
// check can panic in a goroutine of its own on a damaged file, which must not take this process
// down with it.
func checkInChild(path string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this executable to check %s: %w", path, err)
	}
	out, err := exec.Command(exe, "datastore", "check", path).CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return fmt.Errorf("consistency check failed (%v): %s", err, lines[len(lines)-1])
	}
	return nil
}

type listenAddr struct {
	network, address string
}

func parseListenURL(raw string) (listenAddr, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return listenAddr{}, fmt.Errorf("client URL %q: %w", raw, err)
	}
	switch u.Scheme {
	case "http":
		if u.Port() == "" {
			return listenAddr{}, fmt.Errorf("client URL %q has no port; use http://HOST:PORT", raw)
		}
		return listenAddr{"tcp", u.Host}, nil
	case "unix":
		path := u.Host + u.Path
		if path == "" {
			return listenAddr{}, fmt.Errorf("client URL %q has no socket path; use unix:///PATH", raw)
		}
		return listenAddr{"unix", path}, nil
	}
	return listenAddr{}, fmt.Errorf("client URL %q: scheme %q is not supported; use http://HOST:PORT or unix:///PATH", raw, u.Scheme)
}

func (a listenAddr) listen() (net.Listener, error) {
	if a.network == "unix" {
		if err := removeStaleSocket(a.address); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen(a.network, a.address)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("cannot listen on %s: the address is already in use by another process", a.address)
	}
	if err != nil {
		return nil, fmt.Errorf("listening on %s %s: %w", a.network, a.address, err)
	}
	if a.network == "unix" {
		if err := os.Chmod(a.address, 0o600); err != nil {
			l.Close()
			return nil, fmt.Errorf("restricting %s: %w", a.address, err)
		}
	}
	return l, nil
}

// removeStaleSocket removes a socket file left by a process that is gone; a socket something
// still answers on is an address in use.
func removeStaleSocket(path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(filepath.Dir(path), 0o700)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("cannot listen on %s: another process is serving on it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing stale socket %s: %w", path, err)
	}
	return nil
}
