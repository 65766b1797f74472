// Package config holds the settings of `ketch server`, their defaults, and the checks that run
// before anything is started.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ketch-k8s/ketch/manifests"
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
	DefaultFlannelBackend      = "vxlan"
)

// FlannelBackends are the pod network choices: "none" leaves the pod network to the user's CNI.
var FlannelBackends = []string{"vxlan", "host-gw", "none"}

// Cluster is the settings every node of a cluster shares: servers are given them, agents get
// them from their server when they join.
type Cluster struct {
	ClusterCIDR   *net.IPNet
	ServiceCIDR   *net.IPNet
	ClusterDNS    net.IP
	ClusterDomain string
	// FlannelBackend is vxlan, host-gw, or none (the user brings a CNI).
	FlannelBackend string
}

// ServiceIP is the first address of the service range: the kubernetes Service's ClusterIP.
func (c *Cluster) ServiceIP() net.IP {
	ip := append(net.IP(nil), c.ServiceCIDR.IP.To16()...)
	ip[len(ip)-1]++
	return ip
}

// Server is everything `ketch server` is told.
type Server struct {
	Node
	Cluster
	BindAddress         net.IP
	HTTPSPort           int
	TLSSANs             []string
	WriteKubeconfig     string
	WriteKubeconfigMode os.FileMode
	// Extra component arguments, as "flag=value" without dashes; they override ketch's own.
	APIServerArgs         []string
	ControllerManagerArgs []string
	SchedulerArgs         []string
	// Token is the server token's secret part, if the user gave one (--token, --token-file).
	Token string
	// Disable names bundled addons (manifests.Addons) the server must not deploy, and removes
	// if they were.
	Disable []string
}

// ServerRaw is the server's settings as given on the command line or in the config file, before
// they are parsed and checked.
type ServerRaw struct {
	NodeRaw
	BindAddress                                         string
	TLSSANs                                             []string
	HTTPSPort                                           int
	ClusterCIDR, ServiceCIDR, ClusterDNS, ClusterDomain string
	WriteKubeconfig, WriteKubeconfigMode                string
	APIServerArgs, ControllerManagerArgs, SchedulerArgs []string
	Token, TokenFile, FlannelBackend                    string
	Disable                                             []string
}

// ParseServer turns raw settings into a Server, reporting every problem at once.
func ParseServer(raw ServerRaw) (*Server, error) {
	s := &Server{
		Cluster:   Cluster{ClusterDomain: raw.ClusterDomain, FlannelBackend: raw.FlannelBackend},
		HTTPSPort: raw.HTTPSPort, TLSSANs: raw.TLSSANs, WriteKubeconfig: raw.WriteKubeconfig,
		APIServerArgs: raw.APIServerArgs, ControllerManagerArgs: raw.ControllerManagerArgs,
		SchedulerArgs: raw.SchedulerArgs,
	}
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	s.Node = parseNode(raw.NodeRaw, fail)
	s.Token = readToken(raw.Token, raw.TokenFile, fail)
	if !slices.Contains(FlannelBackends, s.FlannelBackend) {
		fail("--flannel-backend %q is not one of %s", s.FlannelBackend, strings.Join(FlannelBackends, ", "))
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
	s.Disable = parseDisable(raw.Disable, fail)
	mode, err := parseMode(raw.WriteKubeconfigMode)
	if err != nil {
		fail("--write-kubeconfig-mode: %v", err)
	}
	s.WriteKubeconfigMode = mode
	checkArgs(map[string][]string{
		"--kube-apiserver-arg": s.APIServerArgs, "--kube-controller-manager-arg": s.ControllerManagerArgs,
		"--kube-scheduler-arg": s.SchedulerArgs,
	}, fail)
	return s, errors.Join(errs...)
}

// parseDisable checks --disable against the bundled addons; names may repeat.
func parseDisable(raw []string, fail func(string, ...any)) []string {
	var out []string
	for _, name := range raw {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
		case !slices.Contains(manifests.Addons(), name):
			fail("--disable %q is not a bundled addon; the addons are %s", name, strings.Join(manifests.Addons(), ", "))
		case !slices.Contains(out, name):
			out = append(out, name)
		}
	}
	return out
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

// APIServerURL is how components on this machine reach kube-apiserver.
func (s *Server) APIServerURL() string {
	return fmt.Sprintf("https://127.0.0.1:%d", s.HTTPSPort)
}
