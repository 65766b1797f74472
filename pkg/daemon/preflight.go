// Package daemon is what the long-running ketch commands (server, agent) share around their
// components: the data dir lock, port checks, the log file and start-up progress lines.
package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// dataDirLock keeps a second ketch off the same data dir for the life of the process.
type DataDirLock struct{ f *os.File }

// LockDataDir takes the data dir's lock, naming the process that holds it if another does.
func LockDataDir(dir string) (*DataDirLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, "ketch.pid")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		holder := strings.TrimSpace(string(b))
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by another running ketch (pid %s); stop it or pass another --data-dir", dir, holder)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &DataDirLock{f: f}, nil
}

// Release gives the data dir up.
func (l *DataDirLock) Release() { l.f.Close() }

// Port is a TCP address one of ketch's components listens on.
type Port struct {
	Addr      string // host:port
	Component string // who listens there
	Move      string // how the user puts it elsewhere
}

// NodePorts lists the node's fixed listeners (the kubelet's and kube-proxy's) as the user's
// --kubelet-arg and --kube-proxy-arg leave them.
func NodePorts(kubeletArgs, kubeProxyArgs []string) []Port {
	var ports []Port
	kubelet := ArgValues(kubeletArgs)
	ports = AddPort(ports, "the kubelet", "--kubelet-arg port=PORT", kubelet.Get("address", "0.0.0.0"), kubelet.Get("port", "10250"))
	ports = AddPort(ports, "the kubelet's read-only server", "--kubelet-arg read-only-port=PORT",
		kubelet.Get("address", "0.0.0.0"), kubelet.Get("read-only-port", "0"))
	ports = AddPort(ports, "the kubelet's health checks", "--kubelet-arg healthz-port=PORT",
		kubelet.Get("healthz-bind-address", "127.0.0.1"), kubelet.Get("healthz-port", "10248"))
	proxy := ArgValues(kubeProxyArgs)
	for _, a := range []struct{ flag, def, what string }{
		{"metrics-bind-address", "127.0.0.1:10249", "kube-proxy's metrics"},
		{"healthz-bind-address", "127.0.0.1:10256", "kube-proxy's health checks"},
	} {
		// A value that is not host:port is kube-proxy's to reject.
		if host, port, err := net.SplitHostPort(proxy.Get(a.flag, a.def)); err == nil {
			ports = AddPort(ports, a.what, "--kube-proxy-arg "+a.flag+"=ADDRESS:PORT", host, port)
		}
	}
	return ports
}

// AddPort appends host:port unless port is empty or 0 (a server the user turned off).
func AddPort(ports []Port, component, move, host, port string) []Port {
	if port == "" || port == "0" {
		return ports
	}
	return append(ports, Port{net.JoinHostPort(host, port), component, move})
}

// Args maps a component's flags to the values the user gave with --*-arg (the last one wins, as
// in component.Args).
type Args map[string]string

// ArgValues reads "flag=value" overrides.
func ArgValues(overrides []string) Args {
	m := Args{}
	for _, o := range overrides {
		k, v, _ := strings.Cut(o, "=")
		m[strings.ReplaceAll(k, "_", "-")] = v
	}
	return m
}

// Get is the user's value for flag, or def.
func (a Args) Get(flag, def string) string {
	if v, ok := a[flag]; ok {
		return v
	}
	return def
}

// CheckPortsFree fails if any address is taken, before anything is started on it. The ports in
// use are reported together, with what needs each one.
func CheckPortsFree(ports ...Port) error {
	var inUse []string
	var errs []error
	for _, p := range ports {
		l, err := net.Listen("tcp", p.Addr)
		switch {
		case err == nil:
			l.Close()
		case errors.Is(err, syscall.EADDRINUSE):
			inUse = append(inUse, fmt.Sprintf("  %s, for %s (to use another: %s)", p.Addr, p.Component, p.Move))
		case errors.Is(err, syscall.EADDRNOTAVAIL):
			errs = append(errs, fmt.Errorf("%s cannot listen on %s: it is not an address of this host", p.Component, p.Addr))
		default:
			errs = append(errs, fmt.Errorf("%s cannot listen on %s: %w", p.Component, p.Addr, err))
		}
	}
	if len(inUse) > 0 {
		errs = append([]error{fmt.Errorf("another process already listens where ketch must; stop it "+
			"(another ketch, k3s or kubelet? `ss -ltnp` names it) or move ketch's listener:\n%s", strings.Join(inUse, "\n"))}, errs...)
	}
	return errors.Join(errs...)
}
