package hostcheck

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
)

// Port is a TCP address one of ketch's components will listen on.
type Port struct {
	Addr      string // host:port
	Component string // who listens there
	Move      string // how the user puts it elsewhere
}

// AddPort appends host:port unless port is empty or 0 (a server the user turned off).
func AddPort(ports []Port, component, move, host, port string) []Port {
	if port == "" || port == "0" {
		return ports
	}
	return append(ports, Port{net.JoinHostPort(host, port), component, move})
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
