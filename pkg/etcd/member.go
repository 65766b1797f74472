// Package etcd runs a server's embedded etcd member (go.etcd.io/etcd/server/v3/embed) and does
// what ketch needs of an etcd cluster, embedded or external: clients over TLS, joining as a
// learner and being promoted, removing members, reporting status, and moving the bbolt
// datastore's data into etcd. docs/ha.md describes it.
package etcd

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/pki"
)

// The member's ports, etcd's own.
const (
	ClientPort = 2379
	PeerPort   = 2380
)

// LocalClientURL is where this machine's kube-apiserver and ketch reach the embedded member.
var LocalClientURL = "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ClientPort))

// PeerURL is the member's peer URL on ip.
func PeerURL(ip net.IP) string {
	return "https://" + net.JoinHostPort(ip.String(), strconv.Itoa(PeerPort))
}

// ClientURL is the member's client URL on ip, which other servers use.
func ClientURL(ip net.IP) string {
	return "https://" + net.JoinHostPort(ip.String(), strconv.Itoa(ClientPort))
}

// MemberConfig is one embedded member.
type MemberConfig struct {
	DataDir string
	// Name is the member's name: the server's node name.
	Name string
	IP   net.IP
	TLS  *pki.Etcd
	// InitialCluster is every member's name=peerURL, this one's included, when joining an
	// existing cluster; empty when starting a new one or restarting on existing data.
	InitialCluster string
	// ForceNewCluster makes the member the only one of its cluster, keeping its data.
	ForceNewCluster bool
	Debug           bool
}

// Member is a running embedded member.
type Member struct {
	e       *embed.Etcd
	dataDir string
}

// StartMember starts the member and returns once it serves (it has joined the cluster and
// applied what it had), or with an error once it failed or ctx ended.
func StartMember(ctx context.Context, c MemberConfig) (*Member, error) {
	cfg := embed.NewConfig()
	cfg.Name = c.Name
	cfg.Dir = c.DataDir
	peer, client := mustURL(PeerURL(c.IP)), mustURL(ClientURL(c.IP))
	local := mustURL(LocalClientURL)
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.ListenClientUrls = []url.URL{client, local}
	if c.IP.IsLoopback() {
		// A member on a loopback address (tests run several, on 127.0.0.2 and up) serves
		// clients there only.
		cfg.ListenClientUrls = []url.URL{client}
	}
	cfg.AdvertiseClientUrls = []url.URL{client}
	cfg.ClientTLSInfo = transport.TLSInfo{
		CertFile: c.TLS.ServerCert, KeyFile: c.TLS.ServerKey, TrustedCAFile: c.TLS.ServerCA, ClientCertAuth: true,
	}
	cfg.PeerTLSInfo = transport.TLSInfo{
		CertFile: c.TLS.PeerCert, KeyFile: c.TLS.PeerKey, TrustedCAFile: c.TLS.PeerCA, ClientCertAuth: true,
	}
	cfg.InitialCluster = c.Name + "=" + peer.String()
	cfg.ClusterState = embed.ClusterStateFlagNew
	if c.InitialCluster != "" {
		cfg.InitialCluster = c.InitialCluster
		cfg.ClusterState = embed.ClusterStateFlagExisting
	}
	cfg.InitialClusterToken = "ketch"
	cfg.ForceNewCluster = c.ForceNewCluster
	// kube-apiserver compacts every 5 minutes itself; the gateway is an HTTP API nobody uses.
	cfg.EnableGRPCGateway = false
	// embed.NewConfig leaves this at 0, which logs every request as slow; etcd's command line
	// defaults it.
	cfg.WarningUnaryRequestDuration = embed.DefaultWarningUnaryRequestDuration
	cfg.LogLevel = "warn"
	if c.Debug {
		cfg.LogLevel = "info"
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting etcd member %s in %s: %w", c.Name, c.DataDir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd member %s: %w", c.Name, err)
	case <-e.Server.StopNotify():
		e.Close()
		return nil, fmt.Errorf("etcd member %s stopped while starting (see the log). If it was removed from its cluster (its Node deleted), it cannot come back with its old data: move %s away and start the server again to join afresh", c.Name, c.DataDir)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("waiting for etcd member %s to serve: %w", c.Name, context.Cause(ctx))
	}
	klog.InfoS("Embedded etcd serving", "name", c.Name, "id", e.Server.MemberID(), "dataDir", c.DataDir, "learner", e.Server.IsLearner())
	return &Member{e: e, dataDir: c.DataDir}, nil
}

// ID is the member's ID in its cluster.
func (m *Member) ID() uint64 { return uint64(m.e.Server.MemberID()) }

// Run serves until ctx ends, then closes the member; it fails if the member stops by itself
// (it was removed from the cluster, or its disk failed).
func (m *Member) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		m.e.Close()
		return nil
	case err := <-m.e.Err():
		m.e.Close()
		return fmt.Errorf("embedded etcd: %w", err)
	case <-m.e.Server.StopNotify():
		m.e.Close()
		return fmt.Errorf("embedded etcd stopped: this member was removed from the cluster (its Node deleted; to join again, move %s away and start the server), or could not write its data (see the log)", m.dataDir)
	}
}

// Close stops the member, as Run does when its context ends.
func (m *Member) Close() { m.e.Close() }

func mustURL(s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return *u
}

// retryEvery is how often the join steps retry what the cluster is not ready for yet.
const retryEvery = time.Second
