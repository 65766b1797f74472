package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/ketch-k8s/ketch/pkg/agent/loadbalancer"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/hostcheck"
	"github.com/ketch-k8s/ketch/pkg/kubeclient"
	"github.com/ketch-k8s/ketch/pkg/lifecycle"
	"github.com/ketch-k8s/ketch/pkg/pki"
	"github.com/ketch-k8s/ketch/pkg/supervisor"
)

// loadBalancerAddress is where the node's components reach kube-apiserver: the agent's
// client-side load balancer, which forwards to the servers.
const loadBalancerAddress = "127.0.0.1:6444"

// Role is `ketch agent`: a node that joins the cluster at cfg.ServerURL.
func Role(cfg *config.Agent) lifecycle.Role {
	ports := append([]hostcheck.Port{{Addr: loadBalancerAddress, Component: "the agent's kube-apiserver load balancer", Move: "none, the port is fixed; stop what holds it"}},
		Ports(&cfg.Node)...)
	return lifecycle.Role{
		Name:  "agent",
		Ports: ports,
		Start: func(ctx context.Context, n *lifecycle.Node) error { return start(ctx, n, cfg) },
	}
}

// start joins the cluster (the server's CA checked against the token, the cluster's settings,
// the node's certificates), starts the load balancer the node's components reach the servers
// through, and then the node.
func start(ctx context.Context, n *lifecycle.Node, cfg *config.Agent) (err error) {
	// The container runtime starts while the node joins; Start waits for it.
	rs := StartRuntime(ctx, n, &cfg.Node)
	defer func() {
		if err != nil {
			rs.Abort()
		}
	}()
	n.Waiting("the server at " + cfg.ServerURL)
	sup, cluster, err := join(ctx, n, cfg)
	if err != nil {
		return err
	}
	n.Phase("joined %s", cfg.ServerURL)
	password, err := nodePassword(cfg.Paths().NodePasswordFile())
	if err != nil {
		return err
	}
	u, _ := url.Parse(cfg.ServerURL)
	lb, err := loadbalancer.New(loadBalancerAddress, u.Host)
	if err != nil {
		return fmt.Errorf("the kube-apiserver load balancer: %w", err)
	}
	// The load balancer's stage outlives the node's components, which talk through it until
	// they stop.
	lbStage := n.Stage("kube-apiserver load balancer")
	n.Go(lbStage, "the kube-apiserver load balancer", lb.Run)

	n.Waiting("node certificates from " + cfg.ServerURL)
	certs, err := pki.EnsureJoinedNode(pki.NodeOptions{
		Dir: cfg.Paths().AgentTLSDir(), CredDir: cfg.Paths().AgentDir(), APIServerURL: lb.URL(),
		NodeName: cfg.NodeName, NodeIPs: append(append([]net.IP{}, cfg.NodeIPs...), cfg.NodeExternalIPs...),
	}, func(req pki.NodeCertRequest) (*pki.NodeCerts, error) {
		var certs *pki.NodeCerts
		err := supervisor.Retry(ctx, n.Printf, cfg.ServerURL, func() (err error) {
			certs, err = sup.SignNodeCerts(ctx, req, password)
			return err
		})
		return certs, err
	})
	if err != nil {
		return fmt.Errorf("node certificates: %w", err)
	}
	proxyClient, err := kubeclient.New(certs.KubeProxyKubeconfig)
	if err != nil {
		return err
	}
	n.Go(lbStage, "the kube-apiserver load balancer's server list", func(ctx context.Context) error {
		loadbalancer.WatchServers(ctx, proxyClient, lb)
		return nil
	})
	return Start(ctx, n, Node{Node: &cfg.Node, Cluster: *cluster, Certs: certs}, rs)
}

// join verifies the server against the token and fetches the cluster's settings.
func join(ctx context.Context, n *lifecycle.Node, cfg *config.Agent) (sup *supervisor.Client, cluster *config.Cluster, err error) {
	var settings *supervisor.AgentConfig
	err = supervisor.Retry(ctx, n.Printf, cfg.ServerURL, func() error {
		if sup, err = supervisor.Connect(ctx, cfg.ServerURL, cfg.Token); err != nil {
			return err
		}
		settings, err = sup.Config(ctx)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	cluster, err = settings.Cluster()
	if err != nil {
		return nil, nil, fmt.Errorf("the server at %s sent unusable settings: %w", cfg.ServerURL, err)
	}
	return sup, cluster, nil
}

// nodePassword is this machine's secret for its node name, made at the first join and kept in
// the data dir: the server refuses the name to any machine without it.
func nodePassword(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading the node password: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	password := hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if err := renameio.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing the node password: %w", err)
	}
	return password, nil
}
