// Package server is what `ketch server` adds to a node: the datastore, the control plane, the
// supervisor that agents join through (served on kube-apiserver's port), the addon deployer, and
// the server's own node. The node frame (pkg/lifecycle) runs it; Role says what differs.
package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	certutil "k8s.io/client-go/util/cert"

	"github.com/ketch-k8s/ketch/pkg/agent"
	"github.com/ketch-k8s/ketch/pkg/component"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/control"
	"github.com/ketch-k8s/ketch/pkg/etcd"
	"github.com/ketch-k8s/ketch/pkg/kubeclient"
	"github.com/ketch-k8s/ketch/pkg/lifecycle"
	"github.com/ketch-k8s/ketch/pkg/pki"
	"github.com/ketch-k8s/ketch/pkg/supervisor"
	"github.com/ketch-k8s/ketch/pkg/token"
)

// Role is `ketch server`.
func Role(cfg *config.Server) lifecycle.Role {
	return lifecycle.Role{
		Name:  "server",
		Ports: ports(cfg),
		Start: func(ctx context.Context, n *lifecycle.Node) error { return start(ctx, n, cfg) },
	}
}

// start brings the server up in dependency order, each part gated on the previous one being
// ready: the datastore, kube-apiserver, the controllers and addons, then the node. The node's
// container runtime, which needs none of them, starts at once beside them.
func start(ctx context.Context, n *lifecycle.Node, cfg *config.Server) (err error) {
	paths := cfg.Paths()
	rs := agent.StartRuntime(ctx, n, &cfg.Node)
	defer func() {
		if err != nil {
			rs.Abort()
		}
	}()
	n.Waiting("the datastore")
	st, err := startDatastore(ctx, n, cfg)
	if err != nil {
		return err
	}
	n.Phase("datastore ready")
	if st.kind != config.Bbolt {
		n.Printf("datastore: %s at %s", st.kind, strings.Join(st.api.Endpoints, ","))
	}
	st.warnIfEven(ctx, n)

	n.Waiting("the cluster's certificates")
	certs, err := pki.EnsureControlPlane(pki.ControlPlaneOptions{
		Dir: paths.ServerTLSDir(), CredDir: paths.ServerCredDir(),
		APIServerURL: cfg.APIServerURL(), NodeName: cfg.NodeName, NodeIPs: cfg.NodeIPs,
		ServiceIP: cfg.ServiceIP(), ClusterDomain: cfg.ClusterDomain, TLSSANs: cfg.TLSSANs,
	})
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	// The client only connects once kube-apiserver serves; the supervisor uses it per request.
	client, err := kubeclient.New(certs.AdminKubeconfig)
	if err != nil {
		return err
	}
	sup, err := newSupervisor(cfg, certs, client, st.serverJoin(cfg))
	if err != nil {
		return err
	}
	nodeCerts, err := certs.EnsureNode(pki.NodeOptions{
		Dir: paths.AgentTLSDir(), CredDir: paths.AgentDir(), APIServerURL: cfg.APIServerURL(),
		NodeName: cfg.NodeName, NodeIPs: cfg.NodeIPs,
	})
	if err != nil {
		return fmt.Errorf("node certificates: %w", err)
	}

	cp := control.Config{Server: cfg, PKI: certs, Etcd: st.api, WrapHandler: sup.Wrap}
	apiStage := n.Stage("kube-apiserver")
	n.Waiting("kube-apiserver to start")
	api, err := control.StartAPIServer(apiStage.Context(), cp)
	if err != nil {
		return err
	}
	n.Watch(apiStage, api)
	n.Waiting("kube-apiserver to be ready")
	if err := control.WaitReady(ctx, certs.AdminKubeconfig); err != nil {
		return err
	}
	n.Phase("apiserver ready")
	n.Waiting("the cluster's RBAC roles")
	if err := certs.WriteAdminKubeconfig(cfg.WriteKubeconfig, cfg.WriteKubeconfigMode, ""); err != nil {
		return fmt.Errorf("writing the admin kubeconfig: %w", err)
	}
	if err := ensureRBAC(ctx, client); err != nil {
		return err
	}

	controllers := n.Stage("controllers")
	n.Waiting("kube-controller-manager and kube-scheduler to start")
	for _, startFn := range []func(context.Context, control.Config) (*component.Component, error){control.StartControllerManager, control.StartScheduler} {
		c, err := startFn(controllers.Context(), cp)
		if err != nil {
			return err
		}
		n.Watch(controllers, c)
	}
	if st.kind == config.Embedded {
		n.Go(controllers, "removing the etcd members of deleted server nodes", func(ctx context.Context) error {
			return etcd.RemoveMembersOfDeletedNodes(ctx, client, st.cli, cfg.NodeName)
		})
	}
	n.Waiting("the addon manifests")
	if err := ensureDashboardTLS(ctx, client, certs, cfg.ClusterDomain, slices.Contains(cfg.Disable, "dashboard")); err != nil {
		return err
	}
	if err := startAddons(n, controllers, cfg, certs.AdminKubeconfig, client); err != nil {
		return err
	}

	n.OnRegistered(func(ctx context.Context) error { return labelControlPlane(ctx, client, cfg.NodeName) })
	n.OnReady(func() {
		n.Printf("agents join with: ketch agent --server https://%s --token-file %s",
			net.JoinHostPort(cfg.NodeIPs[0].String(), strconv.Itoa(cfg.HTTPSPort)), paths.TokenFile())
	})
	return agent.Start(ctx, n, agent.Node{Node: &cfg.Node, Cluster: cfg.Cluster, Certs: nodeCerts}, rs)
}

// newSupervisor makes the join API and the server token it checks.
func newSupervisor(cfg *config.Server, certs *pki.ControlPlane, client kubernetes.Interface, serverJoin func(context.Context) (*supervisor.ServerJoin, error)) (*supervisor.Supervisor, error) {
	caBundle, err := os.ReadFile(certs.ServerCA)
	if err != nil {
		return nil, fmt.Errorf("reading the server CA: %w", err)
	}
	tok, err := token.EnsureServerToken(cfg.Paths().TokenFile(), caBundle, cfg.Token)
	if err != nil {
		return nil, err
	}
	clientCAPool, err := certutil.NewPool(certs.ClientCA)
	if err != nil {
		return nil, fmt.Errorf("the client CA: %w", err)
	}
	dashboard, err := newDashboardProxy(client, caBundle, cfg.ClusterDomain, slices.Contains(cfg.Disable, "dashboard"))
	if err != nil {
		return nil, err
	}
	return supervisor.New(supervisor.Options{
		CABundle: caBundle, ClientCA: clientCAPool, ServerToken: tok, Client: client, Sign: certs.SignNodeCerts,
		Agent: cfg.Cluster.Settings(), Dashboard: dashboard, ServerJoin: serverJoin,
	}), nil
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
