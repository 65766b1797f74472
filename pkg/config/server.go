// Package config holds the settings of `ketch server`, their defaults, and the checks that run
// before anything is started.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Defaults as in ../shared/DESIGN.md; they match k3s where users know its conventions.
const (
	DefaultDataDir             = "/var/lib/ketch"
	DefaultRunDir              = "/run/ketch"
	DefaultHTTPSPort           = 6443
	DefaultClusterCIDR         = "10.42.0.0/16"
	DefaultServiceCIDR         = "10.43.0.0/16"
	DefaultClusterDNS          = "10.43.0.10"
	DefaultClusterDomain       = "cluster.local"
	DefaultWriteKubeconfig     = "/etc/ketch/ketch.yaml"
	DefaultWriteKubeconfigMode = 0o600
	DefaultConfigFile          = "/etc/ketch/config.yaml"
)

// Server is everything `ketch server` is told.
type Server struct {
	DataDir string
	// RunDir holds sockets and other runtime state that must not survive a reboot.
	RunDir              string
	NodeName            string
	NodeIPs             []net.IP
	BindAddress         net.IP
	HTTPSPort           int
	ClusterCIDR         *net.IPNet
	ServiceCIDR         *net.IPNet
	ClusterDNS          net.IP
	ClusterDomain       string
	TLSSANs             []string
	WriteKubeconfig     string
	WriteKubeconfigMode os.FileMode
	// Extra component arguments, as "flag=value" without dashes; they override ketch's own.
	APIServerArgs         []string
	ControllerManagerArgs []string
	SchedulerArgs         []string
	KubeletArgs           []string
	KubeProxyArgs         []string
	Debug                 bool
}

// Raw is the server's settings as given on the command line or in the config file, before
// they are parsed and checked.
type Raw struct {
	DataDir, RunDir, NodeName, BindAddress              string
	NodeIPs, TLSSANs                                    []string
	HTTPSPort                                           int
	ClusterCIDR, ServiceCIDR, ClusterDNS, ClusterDomain string
	WriteKubeconfig, WriteKubeconfigMode                string
	APIServerArgs, ControllerManagerArgs, SchedulerArgs []string
	KubeletArgs, KubeProxyArgs                          []string
	Debug                                               bool
}

// Parse turns raw settings into a Server, reporting every problem at once.
func Parse(raw Raw) (*Server, error) {
	s := &Server{
		DataDir: raw.DataDir, RunDir: raw.RunDir, HTTPSPort: raw.HTTPSPort, ClusterDomain: raw.ClusterDomain,
		TLSSANs: raw.TLSSANs, WriteKubeconfig: raw.WriteKubeconfig, Debug: raw.Debug,
		APIServerArgs: raw.APIServerArgs, ControllerManagerArgs: raw.ControllerManagerArgs,
		SchedulerArgs: raw.SchedulerArgs, KubeletArgs: raw.KubeletArgs, KubeProxyArgs: raw.KubeProxyArgs,
	}
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	for _, dir := range []*string{&s.DataDir, &s.RunDir} {
		if *dir == "" {
			fail("--data-dir and --run-dir must not be empty")
			continue
		}
		abs, err := filepath.Abs(*dir)
		if err != nil {
			fail("directory %q is not usable: %v", *dir, err)
			continue
		}
		*dir = abs
	}
	s.NodeName = strings.ToLower(raw.NodeName)
	if s.NodeName == "" {
		host, err := os.Hostname()
		if err != nil {
			fail("no --node-name given and the hostname is unknown: %v", err)
		}
		s.NodeName = strings.ToLower(host)
	}
	if msgs := validation.IsDNS1123Subdomain(s.NodeName); len(msgs) > 0 {
		fail("--node-name %q is not a valid Kubernetes node name: %s", s.NodeName, strings.Join(msgs, "; "))
	}
	for _, ip := range raw.NodeIPs {
		parsed := net.ParseIP(ip)
		if parsed == nil {
			fail("--node-ip %q is not an IP address", ip)
			continue
		}
		s.NodeIPs = append(s.NodeIPs, parsed)
	}
	if len(raw.NodeIPs) == 0 {
		ip, err := defaultRouteIP()
		if err != nil {
			fail("no --node-ip given and %v", err)
		} else {
			s.NodeIPs = []net.IP{ip}
		}
	}
	if s.BindAddress = net.ParseIP(raw.BindAddress); s.BindAddress == nil {
		fail("--bind-address %q is not an IP address", raw.BindAddress)
	}
	if s.HTTPSPort < 1 || s.HTTPSPort > 65535 {
		fail("--https-listen-port %d is not a TCP port", s.HTTPSPort)
	}
	s.ClusterCIDR = parseCIDR(raw.ClusterCIDR, "--cluster-cidr", fail)
	s.ServiceCIDR = parseCIDR(raw.ServiceCIDR, "--service-cidr", fail)
	if s.ClusterCIDR != nil && s.ServiceCIDR != nil && overlap(s.ClusterCIDR, s.ServiceCIDR) {
		fail("--cluster-cidr %s and --service-cidr %s overlap: pods and services need separate ranges", s.ClusterCIDR, s.ServiceCIDR)
	}
	if s.ClusterCIDR != nil {
		if ones, bits := s.ClusterCIDR.Mask.Size(); bits-ones < 8 {
			fail("--cluster-cidr %s is too small: each node gets a /24 of it", s.ClusterCIDR)
		}
	}
	if s.ClusterDNS = net.ParseIP(raw.ClusterDNS); s.ClusterDNS == nil {
		fail("--cluster-dns %q is not an IP address", raw.ClusterDNS)
	} else if s.ServiceCIDR != nil && !s.ServiceCIDR.Contains(s.ClusterDNS) {
		fail("--cluster-dns %s is outside --service-cidr %s", s.ClusterDNS, s.ServiceCIDR)
	}
	if msgs := validation.IsDNS1123Subdomain(s.ClusterDomain); len(msgs) > 0 {
		fail("--cluster-domain %q is not a DNS name: %s", s.ClusterDomain, strings.Join(msgs, "; "))
	}
	mode, err := parseMode(raw.WriteKubeconfigMode)
	if err != nil {
		fail("--write-kubeconfig-mode: %v", err)
	}
	s.WriteKubeconfigMode = mode
	for name, args := range map[string][]string{
		"--kube-apiserver-arg": s.APIServerArgs, "--kube-controller-manager-arg": s.ControllerManagerArgs,
		"--kube-scheduler-arg": s.SchedulerArgs, "--kubelet-arg": s.KubeletArgs, "--kube-proxy-arg": s.KubeProxyArgs,
	} {
		for _, a := range args {
			if k, _, _ := strings.Cut(a, "="); k == "" || strings.HasPrefix(k, "-") {
				fail("%s %q must be flag=value, without leading dashes", name, a)
			}
		}
	}
	return s, errors.Join(errs...)
}

func parseCIDR(s, flag string, fail func(string, ...any)) *net.IPNet {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		fail("%s %q is not a CIDR (like 10.42.0.0/16): %v", flag, s, err)
		return nil
	}
	if !ip.Equal(n.IP) {
		fail("%s %q has host bits set; did you mean %s?", flag, s, n)
		return nil
	}
	return n
}

func overlap(a, b *net.IPNet) bool { return a.Contains(b.IP) || b.Contains(a.IP) }

func parseMode(s string) (os.FileMode, error) {
	if s == "" {
		return DefaultWriteKubeconfigMode, nil
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("%q is not an octal file mode like 0600", s)
	}
	return os.FileMode(m), nil
}

// defaultRouteIP is the address the kernel would use to reach the outside, which is what users
// mean by "this node's IP" on a single-homed machine. Connecting a UDP socket sends nothing.
func defaultRouteIP() (net.IP, error) {
	c, err := net.Dial("udp4", "203.0.113.1:9")
	if err == nil {
		defer c.Close()
		if ip := c.LocalAddr().(*net.UDPAddr).IP; !ip.IsLoopback() {
			return ip, nil
		}
	}
	return nil, errors.New("no default route to take the node IP from; pass --node-ip")
}

// ServiceIP is the first address of the service range: the kubernetes Service's ClusterIP.
func (s *Server) ServiceIP() net.IP {
	ip := append(net.IP(nil), s.ServiceCIDR.IP.To16()...)
	ip[len(ip)-1]++
	return ip
}

// Paths under the data and run dirs.
func (s *Server) ServerDir() string    { return filepath.Join(s.DataDir, "server") }
func (s *Server) AgentDir() string     { return filepath.Join(s.DataDir, "agent") }
func (s *Server) DatastoreDir() string { return filepath.Join(s.ServerDir(), "db") }

// DatastoreSocket is where kube-apiserver reaches the datastore: a unix socket, never a port.
func (s *Server) DatastoreSocket() string { return filepath.Join(s.RunDir, "datastore.sock") }

// APIServerURL is how components on this machine reach kube-apiserver.
func (s *Server) APIServerURL() string {
	return fmt.Sprintf("https://127.0.0.1:%d", s.HTTPSPort)
}
