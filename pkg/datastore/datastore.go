// Package datastore runs ketch's etcd-API datastore: the mvcc store served over gRPC on the
// configured client URLs. `ketch server` runs it in-process; `ketch datastore` runs it alone.
package datastore

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	serveErr  chan error
}

// Start validates cfg, opens the store and serves it. Nothing is started if cfg is invalid or
// the data dir or an address is in use.
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
	d := &Datastore{store: store, serveErr: make(chan error, len(addrs))}
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
	for _, l := range d.listeners {
		go func(l net.Listener) { d.serveErr <- d.grpc.Serve(l) }(l)
	}
	rev, compacted := store.Revs()
	klog.InfoS("Datastore serving", "urls", cfg.ListenClientURLs, "dataDir", cfg.DataDir, "revision", rev, "compacted", compacted)
	return d, nil
}

// Store returns the underlying store.
func (d *Datastore) Store() *mvcc.Store { return d.store }

// Err reports a listener that stopped serving on its own.
func (d *Datastore) Err() <-chan error { return d.serveErr }

// Stop stops serving, giving requests in flight a moment to finish, and closes the store.
func (d *Datastore) Stop() error {
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
