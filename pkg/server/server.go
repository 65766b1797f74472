// Package server brings up `ketch server`: the datastore, the control plane and the embedded
// agent, in dependency order, each gated on the previous one being ready.
package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"

	"github.com/ketch-k8s/ketch/pkg/agent"
	"github.com/ketch-k8s/ketch/pkg/component"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/control"
	"github.com/ketch-k8s/ketch/pkg/daemon"
	"github.com/ketch-k8s/ketch/pkg/datastore"
	"github.com/ketch-k8s/ketch/pkg/hostcheck"
	"github.com/ketch-k8s/ketch/pkg/lifecycle"
	"github.com/ketch-k8s/ketch/pkg/pki"
	"github.com/ketch-k8s/ketch/pkg/supervisor"
	"github.com/ketch-k8s/ketch/pkg/token"
)

// shutdownTimeout bounds how long components get to stop after SIGTERM.
const shutdownTimeout = 20 * time.Second

// Run runs the server until ctx ends or a component fails.
func Run(ctx context.Context, cfg *config.Server) (err error) {
	start := time.Now()

	// Everything that can be checked is checked before anything starts.
	lock, err := daemon.LockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.Release()
	host, err := hostcheck.Check()
	if err != nil {
		return err
	}
	if err := daemon.CheckPortsFree(serverPorts(cfg, net.JoinHostPort(cfg.BindAddress.String(), strconv.Itoa(cfg.HTTPSPort)))...); err != nil {
		return err
	}
	p, err := daemon.OpenConsole(cfg.DataDir, cfg.Debug, start, host.Messages)
	if err != nil {
		return err
	}
	// From here on stderr is the log file: a failure goes there and to the user's terminal.
	defer p.Report("Server failed", &err)
	out := p.Out()

	ds, err := datastore.Start(datastore.Config{
		DataDir:          cfg.DatastoreDir(),
		ListenClientURLs: []string{"unix://" + cfg.DatastoreSocket()},
		Name:             cfg.NodeName,
		HistoryRevisions: datastore.DefaultHistoryRevisions,
	})
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := ds.Stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("stopping the datastore: %w", stopErr)
		}
	}()
	p.Phase("datastore ready")

	certs, err := pki.EnsureControlPlane(pki.ControlPlaneOptions{
		Dir: filepath.Join(cfg.ServerDir(), "tls"), CredDir: filepath.Join(cfg.ServerDir(), "cred"),
		APIServerURL: cfg.APIServerURL(), NodeName: cfg.NodeName, NodeIPs: cfg.NodeIPs,
		ServiceIP: cfg.ServiceIP(), ClusterDomain: cfg.ClusterDomain, TLSSANs: cfg.TLSSANs,
	})
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	// The client only connects once kube-apiserver serves; the supervisor uses it per request.
	client, err := adminClient(certs.AdminKubeconfig)
	if err != nil {
		return err
	}
	sup, err := newSupervisor(cfg, certs, client)
	if err != nil {
		return err
	}
	nodeCerts, err := certs.EnsureNode(pki.NodeOptions{
		Dir: filepath.Join(cfg.AgentDir(), "tls"), CredDir: cfg.AgentDir(), APIServerURL: cfg.APIServerURL(),
		NodeName: cfg.NodeName, NodeIPs: cfg.NodeIPs,
	})
	if err != nil {
		return fmt.Errorf("node certificates: %w", err)
	}

	// Components stop in the reverse order of their start, each stage once the later ones are
	// down (the node, then the controllers, then kube-apiserver), so that none spends its
	// shutdown retrying calls to a kube-apiserver that is already gone; containerd goes last.
	// Their contexts therefore do not derive their cancellation from ctx.
	var stages []*stage
	newStage := func() (context.Context, *stage) {
		stageCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		st := &stage{cancel: cancel}
		stages = append(stages, st)
		return stageCtx, st
	}
	var components []*component.Component
	var node *agent.Agent
	defer func() {
		deadline := time.Now().Add(shutdownTimeout)
		for i := len(stages) - 1; i >= 0; i-- {
			stages[i].cancel()
			lifecycle.WaitStopped(stages[i].components, deadline, shutdownTimeout)
		}
		if node != nil {
			node.Stop()
		}
	}()

	cp := control.Config{Server: cfg, Certs: control.Certs{
		ClientCA: certs.ClientCA, ClientCAKey: certs.ClientCAKey, ServerCA: certs.ServerCA, ServerCAKey: certs.ServerCAKey,
		RequestHeaderCA: certs.RequestHeaderCA, ServiceAccountKey: certs.ServiceAccountKey, ServiceAccountPub: certs.ServiceAccountPub,
		APIServerCert: certs.APIServerCert, APIServerKey: certs.APIServerKey,
		KubeletClientCert: certs.APIServerKubeletClientCert, KubeletClientKey: certs.APIServerKubeletClientKey,
		FrontProxyClientCert: certs.FrontProxyClientCert, FrontProxyClientKey: certs.FrontProxyClientKey,
		AdminKubeconfig: certs.AdminKubeconfig, ControllerKubeconfig: certs.ControllerKubeconfig, SchedulerKubeconfig: certs.SchedulerKubeconfig,
	}, WrapHandler: sup.Wrap}
	apiCtx, apiStage := newStage()
	api, err := control.StartAPIServer(apiCtx, cp)
	if err != nil {
		return err
	}
	apiStage.components = append(apiStage.components, api)
	components = append(components, api)
	if err := control.WaitReady(ctx, certs.AdminKubeconfig, api); err != nil {
		return err
	}
	p.Phase("apiserver ready")
	if err := certs.WriteAdminKubeconfig(cfg.WriteKubeconfig, cfg.WriteKubeconfigMode, ""); err != nil {
		return fmt.Errorf("writing the admin kubeconfig: %w", err)
	}
	if err := ensureRBAC(ctx, client); err != nil {
		return err
	}
	controllersCtx, controllersStage := newStage()
	for _, startFn := range []func(context.Context, control.Config) (*component.Component, error){control.StartControllerManager, control.StartScheduler} {
		c, err := startFn(controllersCtx, cp)
		if err != nil {
			return err
		}
		controllersStage.components = append(controllersStage.components, c)
		components = append(components, c)
	}
	addons, err := startAddons(controllersCtx, cfg, certs.AdminKubeconfig, client)
	if err != nil {
		return err
	}
	controllersStage.components = append(controllersStage.components, addons...)
	components = append(components, addons...)

	previousHeartbeat := lifecycle.LastHeartbeat(ctx, client, cfg.NodeName)
	nodeCtx, nodeStage := newStage()
	node, err = agent.Start(nodeCtx, agent.Config{
		NodeName: cfg.NodeName, NodeIPs: cfg.NodeIPs, DataDir: cfg.DataDir, RunDir: cfg.RunDir,
		ClusterCIDR: cfg.ClusterCIDR, ClusterDNS: cfg.ClusterDNS, ClusterDomain: cfg.ClusterDomain,
		Certs: nodeCerts, Host: host, KubeletArgs: cfg.KubeletArgs, KubeProxyArgs: cfg.KubeProxyArgs,
		Labels: cfg.Labels, Taints: cfg.Taints, FlannelBackend: cfg.FlannelBackend, FlannelIface: cfg.FlannelIface,
		Log: os.Stderr,
	})
	if err != nil {
		return err
	}
	nodeStage.components = node.Components
	components = append(components, node.Components...)

	if err := lifecycle.WaitNode(ctx, client, cfg.NodeName, components, lifecycle.Registered); err != nil {
		return err
	}
	p.Phase("node registered")
	if err := labelControlPlane(ctx, client, cfg.NodeName); err != nil {
		return err
	}
	if err := lifecycle.WaitNode(ctx, client, cfg.NodeName, components, lifecycle.ReadySince(start, previousHeartbeat)); err != nil {
		return err
	}
	p.Phase("node Ready")
	fmt.Fprintf(out, "ketch: agents join with: ketch agent --server https://%s --token-file %s\n",
		net.JoinHostPort(cfg.NodeIPs[0].String(), strconv.Itoa(cfg.HTTPSPort)), cfg.TokenFile())

	if err := lifecycle.WaitAny(ctx, components); err != nil {
		return err
	}
	fmt.Fprintln(out, "ketch: stopping")
	return nil
}

// newSupervisor makes the join API and the server token it checks.
func newSupervisor(cfg *config.Server, certs *pki.ControlPlane, client kubernetes.Interface) (*supervisor.Supervisor, error) {
	caBundle, err := os.ReadFile(certs.ServerCA)
	if err != nil {
		return nil, fmt.Errorf("reading the server CA: %w", err)
	}
	tok, err := token.EnsureServerToken(cfg.TokenFile(), caBundle, cfg.Token)
	if err != nil {
		return nil, err
	}
	clientCAPool, err := certutil.NewPool(certs.ClientCA)
	if err != nil {
		return nil, fmt.Errorf("the client CA: %w", err)
	}
	return supervisor.New(supervisor.Options{
		CABundle: caBundle, ClientCA: clientCAPool, ServerToken: tok, Client: client, Sign: certs.SignNodeCerts,
		Agent: supervisor.AgentConfig{
			ClusterCIDR: cfg.ClusterCIDR.String(), ServiceCIDR: cfg.ServiceCIDR.String(), ClusterDNS: cfg.ClusterDNS.String(),
			ClusterDomain: cfg.ClusterDomain, FlannelBackend: cfg.FlannelBackend,
		},
	}), nil
}

func adminClient(kubeconfig string) (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", kubeconfig, err)
	}
	return kubernetes.NewForConfig(rc)
}

// labelControlPlane marks the server's node as kubeadm and k3s do; the kubelet may not set
// node-role labels on itself (NodeRestriction), so the server does.
func labelControlPlane(ctx context.Context, client kubernetes.Interface, name string) error {
	patch := []byte(`{"metadata":{"labels":{"node-role.kubernetes.io/control-plane":"true"}}}`)
	if _, err := client.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("labelling node %s as control plane: %w", name, err)
	}
	return nil
}

// stage is components that stop together.
type stage struct {
	cancel     context.CancelFunc
	components []*component.Component
}
