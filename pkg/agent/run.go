package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/renameio/v2"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/agent/loadbalancer"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/daemon"
	"github.com/ketch-k8s/ketch/pkg/hostcheck"
	"github.com/ketch-k8s/ketch/pkg/lifecycle"
	"github.com/ketch-k8s/ketch/pkg/pki"
	"github.com/ketch-k8s/ketch/pkg/supervisor"
)

const (
	// loadBalancerAddress is where the node's components reach kube-apiserver: the agent's
	// client-side load balancer, which forwards to the servers.
	loadBalancerAddress = "127.0.0.1:6444"
	shutdownTimeout     = 20 * time.Second
)

// Run joins the node to the cluster at cfg.ServerURL and runs it until ctx ends or a
// component fails: `ketch agent`.
func Run(ctx context.Context, cfg *config.Agent) (err error) {
	start := time.Now()
	lock, err := daemon.LockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.Release()
	host, err := hostcheck.Check()
	if err != nil {
		return err
	}
	ports := append([]daemon.Port{{Addr: loadBalancerAddress, Component: "the agent's kube-apiserver load balancer", Move: "none, the port is fixed; stop what holds it"}},
		daemon.NodePorts(cfg.KubeletArgs, cfg.KubeProxyArgs)...)
	if err := daemon.CheckPortsFree(ports...); err != nil {
		return err
	}
	p, err := daemon.OpenConsole(cfg.DataDir, cfg.Debug, start, host.Messages)
	if err != nil {
		return err
	}
	// From here on stderr is the log file: a failure goes there and to the user's terminal.
	defer p.Report("Agent failed", &err)
	out := p.Out()

	sup, cluster, err := join(ctx, cfg, out)
	if err != nil {
		return err
	}
	p.Phase("joined %s", cfg.ServerURL)
	password, err := nodePassword(filepath.Join(cfg.AgentDir(), "node-password"))
	if err != nil {
		return err
	}
	u, _ := url.Parse(cfg.ServerURL)
	lb, err := loadbalancer.New(loadBalancerAddress, u.Host)
	if err != nil {
		return fmt.Errorf("the kube-apiserver load balancer: %w", err)
	}
	// The load balancer outlives the node's components, which talk through it until they stop.
	lbCtx, stopLB := context.WithCancel(context.WithoutCancel(ctx))
	lbDone := make(chan struct{})
	go func() {
		defer close(lbDone)
		if err := lb.Run(lbCtx); err != nil {
			klog.ErrorS(err, "The kube-apiserver load balancer stopped")
		}
	}()
	defer func() {
		stopLB()
		<-lbDone
	}()

	certs, err := pki.EnsureJoinedNode(pki.NodeOptions{
		Dir: filepath.Join(cfg.AgentDir(), "tls"), CredDir: cfg.AgentDir(), APIServerURL: lb.URL(),
		NodeName: cfg.NodeName, NodeIPs: append(append([]net.IP{}, cfg.NodeIPs...), cfg.NodeExternalIPs...),
	}, func(req pki.NodeCertRequest) (*pki.NodeCerts, error) {
		var certs *pki.NodeCerts
		err := retry(ctx, out, cfg.ServerURL, func() (err error) {
			certs, err = sup.SignNodeCerts(ctx, req, password)
			return err
		})
		return certs, err
	})
	if err != nil {
		return fmt.Errorf("node certificates: %w", err)
	}

	nodeClient, err := clientFor(certs.KubeletKubeconfig)
	if err != nil {
		return err
	}
	previousHeartbeat := lifecycle.LastHeartbeat(ctx, nodeClient, cfg.NodeName)
	nodeCtx, stopNode := context.WithCancel(context.WithoutCancel(ctx))
	defer stopNode()
	node, err := Start(nodeCtx, Config{
		NodeName: cfg.NodeName, NodeIPs: cfg.NodeIPs, DataDir: cfg.DataDir, RunDir: cfg.RunDir,
		ClusterCIDR: cluster.clusterCIDR, ClusterDNS: cluster.clusterDNS, ClusterDomain: cluster.ClusterDomain,
		Certs: certs, Host: host, Labels: cfg.Labels, Taints: cfg.Taints,
		KubeletArgs: cfg.KubeletArgs, KubeProxyArgs: cfg.KubeProxyArgs,
		FlannelBackend: cluster.FlannelBackend, FlannelIface: cfg.FlannelIface, Log: os.Stderr,
	})
	if err != nil {
		return err
	}
	defer func() {
		stopNode()
		lifecycle.WaitStopped(node.Components, time.Now().Add(shutdownTimeout), shutdownTimeout)
		node.Stop()
	}()

	proxyClient, err := clientFor(certs.KubeProxyKubeconfig)
	if err != nil {
		return err
	}
	go loadbalancer.WatchServers(lbCtx, proxyClient, lb)

	if err := lifecycle.WaitNode(ctx, nodeClient, cfg.NodeName, node.Components, lifecycle.Registered); err != nil {
		return err
	}
	p.Phase("node registered")
	if err := lifecycle.WaitNode(ctx, nodeClient, cfg.NodeName, node.Components, lifecycle.ReadySince(start, previousHeartbeat)); err != nil {
		return err
	}
	p.Phase("node Ready")
	if err := lifecycle.WaitAny(ctx, node.Components); err != nil {
		return err
	}
	fmt.Fprintln(out, "ketch: stopping")
	return nil
}

// clusterSettings is the server's AgentConfig, parsed.
type clusterSettings struct {
	supervisor.AgentConfig
	clusterCIDR *net.IPNet
	clusterDNS  net.IP
}

// join verifies the server against the token and fetches the cluster's settings.
func join(ctx context.Context, cfg *config.Agent, out io.Writer) (sup *supervisor.Client, cs *clusterSettings, err error) {
	err = retry(ctx, out, cfg.ServerURL, func() error {
		if sup, err = supervisor.Connect(ctx, cfg.ServerURL, cfg.Token); err != nil {
			return err
		}
		settings, err := sup.Config(ctx)
		if err != nil {
			return err
		}
		cs = &clusterSettings{AgentConfig: *settings, clusterDNS: net.ParseIP(settings.ClusterDNS)}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if _, cs.clusterCIDR, err = net.ParseCIDR(cs.ClusterCIDR); err != nil || cs.clusterDNS == nil {
		return nil, nil, fmt.Errorf("the server sent unusable settings %+v", cs.AgentConfig)
	}
	return sup, cs, nil
}

// retry runs call until it succeeds, fails for good, or ctx ends. A server that cannot be
// reached or is not ready yet is waited for, as the agents of a cluster that boots all at once
// must; a refusal is final.
func retry(ctx context.Context, out io.Writer, server string, call func() error) error {
	var last string
	for {
		err := call()
		if err == nil || !supervisor.Retryable(err) {
			return err
		}
		if msg := err.Error(); msg != last {
			fmt.Fprintf(out, "ketch: waiting for the server at %s: %v\n", server, err)
			last = msg
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("joining %s: %w", server, ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
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

func clientFor(kubeconfig string) (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", kubeconfig, err)
	}
	return kubernetes.NewForConfig(rc)
}
