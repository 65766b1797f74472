// Package config holds the settings of `ketch server`, their defaults, and the checks that run
// before anything is started.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
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
	// ClusterInit starts an embedded etcd cluster instead of the bbolt datastore (or moves the
	// bbolt datastore into one); JoinURL joins the embedded etcd cluster of the server there.
	ClusterInit bool
	JoinURL     string
	// ClusterReset makes this server's embedded etcd member the only one, keeping its data.
	ClusterReset bool
	// Datastore is an external etcd cluster, if given.
	Datastore ExternalDatastore
}

// ExternalDatastore is --datastore-endpoint and its TLS files.
type ExternalDatastore struct {
	Endpoints                 []string
	CAFile, CertFile, KeyFile string
}

// DatastoreKind is which store a server runs on.
type DatastoreKind string

const (
	Bbolt    DatastoreKind = "bbolt"
	Embedded DatastoreKind = "embedded etcd"
	External DatastoreKind = "external etcd"
)

// DatastoreKind says which store this server uses: external etcd when given, embedded etcd when
// asked for or when the data dir already has an embedded member (a server never goes back to
// bbolt by itself), and otherwise bbolt.
func (s *Server) DatastoreKind() DatastoreKind {
	switch {
	case len(s.Datastore.Endpoints) > 0:
		return External
	case s.ClusterInit || s.JoinURL != "" || s.ClusterReset || s.Paths().HasEtcdMember():
		return Embedded
	}
	return Bbolt
}

// HA is whether other servers may share this server's datastore, so that kube-controller-manager
// and kube-scheduler must elect a leader among the servers.
func (s *Server) HA() bool { return s.DatastoreKind() != Bbolt }

// ServerRaw is the server's settings as given on the command line or in the config file, before
// they are parsed and checked.
type ServerRaw struct {
	NodeRaw
	BindAddress                                          string
	TLSSANs                                              []string
	HTTPSPort                                            int
	ClusterCIDR, ServiceCIDR, ClusterDNS, ClusterDomain  string
	WriteKubeconfig, WriteKubeconfigMode                 string
	APIServerArgs, ControllerManagerArgs, SchedulerArgs  []string
	Token, TokenFile, FlannelBackend                     string
	Disable                                              []string
	ClusterInit, ClusterReset                            bool
	JoinURL                                              string
	DatastoreEndpoint                                    []string
	DatastoreCAFile, DatastoreCertFile, DatastoreKeyFile string
}

// ParseServer turns raw settings into a Server, reporting every problem at once.
func ParseServer(raw ServerRaw) (*Server, error) {
	s := &Server{
		Cluster:   Cluster{ClusterDomain: raw.ClusterDomain, FlannelBackend: raw.FlannelBackend},
		HTTPSPort: raw.HTTPSPort, TLSSANs: raw.TLSSANs, WriteKubeconfig: raw.WriteKubeconfig,
		APIServerArgs: raw.APIServerArgs, ControllerManagerArgs: raw.ControllerManagerArgs,
		SchedulerArgs: raw.SchedulerArgs, ClusterInit: raw.ClusterInit, ClusterReset: raw.ClusterReset,
		JoinURL: raw.JoinURL,
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
	parseHA(s, raw, fail)
	checkArgs(map[string][]string{
		"--kube-apiserver-arg": s.APIServerArgs, "--kube-controller-manager-arg": s.ControllerManagerArgs,
		"--kube-scheduler-arg": s.SchedulerArgs,
	}, fail)
	return s, errors.Join(errs...)
}

// parseHA checks the flags that choose and join a datastore shared by several servers.
func parseHA(s *Server, raw ServerRaw, fail func(string, ...any)) {
	for _, e := range raw.DatastoreEndpoint {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			fail("--datastore-endpoint %q is not an etcd client URL such as https://10.0.0.5:2379", e)
			continue
		}
		s.Datastore.Endpoints = append(s.Datastore.Endpoints, e)
	}
	s.Datastore.CAFile, s.Datastore.CertFile, s.Datastore.KeyFile = raw.DatastoreCAFile, raw.DatastoreCertFile, raw.DatastoreKeyFile
	external := len(s.Datastore.Endpoints) > 0
	for flag, path := range map[string]string{"--datastore-cafile": raw.DatastoreCAFile, "--datastore-certfile": raw.DatastoreCertFile, "--datastore-keyfile": raw.DatastoreKeyFile} {
		switch {
		case path == "":
		case !external:
			fail("%s is only for an external etcd; give --datastore-endpoint too", flag)
		default:
			if _, err := os.Stat(path); err != nil {
				fail("%s: %v", flag, err)
			}
		}
	}
	if (raw.DatastoreCertFile == "") != (raw.DatastoreKeyFile == "") {
		fail("--datastore-certfile and --datastore-keyfile go together: give both or neither")
	}
	if s.JoinURL != "" {
		if u, err := url.Parse(s.JoinURL); err != nil || u.Scheme != "https" || u.Host == "" {
			fail("--server %q must be the first server's https URL, such as https://10.0.0.1:6443", s.JoinURL)
		}
		if s.Token == "" {
			fail("joining a server with --server needs the cluster's server token: --token or --token-file (the first server's <data-dir>/server/token)")
		}
	}
	switch {
	case external && (s.ClusterInit || s.JoinURL != "" || s.ClusterReset):
		fail("--datastore-endpoint uses an external etcd: it does not go with --cluster-init, --server or --cluster-reset (servers on one external etcd find each other through it)")
	case s.ClusterInit && s.JoinURL != "":
		fail("--cluster-init starts a new cluster and --server joins an existing one: give one of them")
	case s.ClusterReset && s.JoinURL != "":
		fail("--cluster-reset makes this server the only member of its own etcd cluster; it does not go with --server")
	}
	if external && s.Token == "" {
		if _, err := os.Stat(s.Paths().TokenFile()); err != nil {
			fail("--datastore-endpoint needs the cluster's token (--token or --token-file): the servers keep the cluster's CAs in the datastore, encrypted with it")
		}
	}
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
