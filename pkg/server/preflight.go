package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/ketch-k8s/ketch/pkg/config"
)

// dataDirLock keeps a second ketch off the same data dir for the life of the process.
type dataDirLock struct{ f *os.File }

// lockDataDir takes the data dir's lock, naming the process that holds it if another does.
func lockDataDir(dir string) (*dataDirLock, error) {
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
	return &dataDirLock{f: f}, nil
}

func (l *dataDirLock) release() { l.f.Close() }

// listenPort is a TCP address one of the server's components listens on.
type listenPort struct {
	addr      string // host:port
	component string // who listens there
	move      string // how the user puts it elsewhere
}

// serverPorts lists the TCP addresses the server's components will listen on: kube-apiserver's
// (apiserver, from --bind-address and --https-listen-port) and the fixed ones of the control
// plane and the node, as the --*-arg overrides leave them. Checking them all up front turns a
// conflict into one clear error instead of a component failing minutes into the start.
func serverPorts(cfg *config.Server, apiserver string) []listenPort {
	ports := []listenPort{{apiserver, "kube-apiserver", "--https-listen-port or --bind-address"}}
	add := func(component, move, host, port string) {
		if port == "" || port == "0" { // a server the user turned off
			return
		}
		ports = append(ports, listenPort{net.JoinHostPort(host, port), component, move})
	}
	cm := argValues(cfg.ControllerManagerArgs)
	add("kube-controller-manager", "--kube-controller-manager-arg secure-port=PORT",
		cm.get("bind-address", "127.0.0.1"), cm.get("secure-port", "10257"))
	sched := argValues(cfg.SchedulerArgs)
	add("kube-scheduler", "--kube-scheduler-arg secure-port=PORT",
		sched.get("bind-address", "127.0.0.1"), sched.get("secure-port", "10259"))
	kubelet := argValues(cfg.KubeletArgs)
	add("the kubelet", "--kubelet-arg port=PORT", kubelet.get("address", "0.0.0.0"), kubelet.get("port", "10250"))
	add("the kubelet's read-only server", "--kubelet-arg read-only-port=PORT",
		kubelet.get("address", "0.0.0.0"), kubelet.get("read-only-port", "0"))
	add("the kubelet's health checks", "--kubelet-arg healthz-port=PORT",
		kubelet.get("healthz-bind-address", "127.0.0.1"), kubelet.get("healthz-port", "10248"))
	proxy := argValues(cfg.KubeProxyArgs)
	for _, a := range []struct{ flag, def, what string }{
		{"metrics-bind-address", "127.0.0.1:10249", "kube-proxy's metrics"},
		{"healthz-bind-address", "127.0.0.1:10256", "kube-proxy's health checks"},
	} {
		// A value that is not host:port is kube-proxy's to reject.
		if host, port, err := net.SplitHostPort(proxy.get(a.flag, a.def)); err == nil {
			add(a.what, "--kube-proxy-arg "+a.flag+"=ADDRESS:PORT", host, port)
		}
	}
	return ports
}

// args maps a component's flags to the values the user gave with --*-arg (the last one wins, as
// in component.Args).
type args map[string]string

func argValues(overrides []string) args {
	m := args{}
	for _, o := range overrides {
		k, v, _ := strings.Cut(o, "=")
		m[strings.ReplaceAll(k, "_", "-")] = v
	}
	return m
}

func (a args) get(flag, def string) string {
	if v, ok := a[flag]; ok {
		return v
	}
	return def
}

// checkPortsFree fails if any address is taken, before anything is started on it. The ports in
// use are reported together, with what needs each one.
func checkPortsFree(ports ...listenPort) error {
	var inUse []string
	var errs []error
	for _, p := range ports {
		l, err := net.Listen("tcp", p.addr)
		switch {
		case err == nil:
			l.Close()
		case errors.Is(err, syscall.EADDRINUSE):
			inUse = append(inUse, fmt.Sprintf("  %s, for %s (to use another: %s)", p.addr, p.component, p.move))
		case errors.Is(err, syscall.EADDRNOTAVAIL):
			errs = append(errs, fmt.Errorf("%s cannot listen on %s: it is not an address of this host", p.component, p.addr))
		default:
			errs = append(errs, fmt.Errorf("%s cannot listen on %s: %w", p.component, p.addr, err))
		}
	}
	if len(inUse) > 0 {
		errs = append([]error{fmt.Errorf("another process already listens where ketch server must; stop it "+
			"(another ketch, k3s or kubelet? `ss -ltnp` names it) or move ketch's listener:\n%s", strings.Join(inUse, "\n"))}, errs...)
	}
	return errors.Join(errs...)
}
