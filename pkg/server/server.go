// Package server brings up `ketch server`: the datastore, the control plane and the embedded
// agent, in dependency order, each gated on the previous one being ready.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/agent"
	"github.com/ketch-k8s/ketch/pkg/agent/hostcheck"
	"github.com/ketch-k8s/ketch/pkg/component"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/control"
	"github.com/ketch-k8s/ketch/pkg/datastore"
	"github.com/ketch-k8s/ketch/pkg/pki"
)

// shutdownTimeout bounds how long components get to stop after SIGTERM.
const shutdownTimeout = 20 * time.Second

// Run runs the server until ctx ends or a component fails.
func Run(ctx context.Context, cfg *config.Server) (err error) {
	start := time.Now()

	// Everything that can be checked is checked before anything starts.
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.release()
	host, err := hostcheck.Check()
	if err != nil {
		return err
	}
	if err := checkPortsFree(serverPorts(cfg, net.JoinHostPort(cfg.BindAddress.String(), strconv.Itoa(cfg.HTTPSPort)))...); err != nil {
		return err
	}
	logFile := filepath.Join(cfg.DataDir, "logs", "ketch.log")
	out, err := redirectLogs(logFile, cfg.Debug)
	if err != nil {
		return err
	}
	// From here on stderr is the log file: a failure goes there and to the user's terminal.
	defer func() {
		if err != nil {
			klog.ErrorS(err, "Server failed")
			if !cfg.Debug {
				fmt.Fprintf(out, "ketch: %v (log: %s)\n", err, logFile)
				err = ReportedError{err}
			}
		}
	}()
	p := progress{w: out, start: start}
	for _, msg := range host.Messages {
		fmt.Fprintf(out, "ketch: %s\n", msg)
	}

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
	p.phase("datastore ready")

	certs, err := pki.EnsureServer(pki.ServerOptions{
		Dir: filepath.Join(cfg.ServerDir(), "tls"), CredDir: filepath.Join(cfg.ServerDir(), "cred"),
		APIServerURL: cfg.APIServerURL(), NodeName: cfg.NodeName, NodeIPs: cfg.NodeIPs,
		ServiceIP: cfg.ServiceIP(), ClusterDomain: cfg.ClusterDomain, TLSSANs: cfg.TLSSANs,
	})
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
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
			waitStopped(stages[i].components, deadline)
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
	}}
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
	p.phase("apiserver ready")
	if err := certs.WriteAdminKubeconfig(cfg.WriteKubeconfig, cfg.WriteKubeconfigMode, ""); err != nil {
		return fmt.Errorf("writing the admin kubeconfig: %w", err)
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

	nodeCtx, nodeStage := newStage()
	node, err = agent.Start(nodeCtx, agent.Config{
		NodeName: cfg.NodeName, NodeIPs: cfg.NodeIPs, DataDir: cfg.DataDir, RunDir: cfg.RunDir,
		ClusterCIDR: cfg.ClusterCIDR, ClusterDNS: cfg.ClusterDNS, ClusterDomain: cfg.ClusterDomain,
		Certs: nodeCerts, Host: host, KubeletArgs: cfg.KubeletArgs, KubeProxyArgs: cfg.KubeProxyArgs,
		Log: os.Stderr,
	})
	if err != nil {
		return err
	}
	nodeStage.components = node.Components
	components = append(components, node.Components...)

	client, err := adminClient(certs.AdminKubeconfig)
	if err != nil {
		return err
	}
	if err := waitNode(ctx, client, cfg.NodeName, components, func(n *corev1.Node) bool { return true }); err != nil {
		return err
	}
	p.phase("node registered")
	if err := labelControlPlane(ctx, client, cfg.NodeName); err != nil {
		return err
	}
	if err := waitNode(ctx, client, cfg.NodeName, components, readySince(start)); err != nil {
		return err
	}
	p.phase("node Ready")

	if err := waitAny(ctx, components); err != nil {
		return err
	}
	fmt.Fprintln(out, "ketch: stopping")
	return nil
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

// readySince is whether the node's kubelet has reported it Ready since t: after a restart the
// Node still carries the previous run's Ready condition until the kubelet's first heartbeat.
// Heartbeat times have a resolution of one second.
func readySince(t time.Time) func(*corev1.Node) bool {
	t = t.Truncate(time.Second)
	return func(n *corev1.Node) bool {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue && !c.LastHeartbeatTime.Time.Before(t)
			}
		}
		return false
	}
}

// waitNode waits until the node exists and satisfies ok, failing early if a component stops.
func waitNode(ctx context.Context, client kubernetes.Interface, name string, components []*component.Component, ok func(*corev1.Node) bool) error {
	for {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil && ok(n) {
			return nil
		}
		for _, c := range components {
			select {
			case <-c.Done():
				return c.Stopped()
			default:
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitAny waits until ctx ends (a clean stop) or a component stops (a failure).
func waitAny(ctx context.Context, components []*component.Component) error {
	stopped := make(chan error, len(components))
	for _, c := range components {
		go func(c *component.Component) {
			select {
			case <-c.Done():
				stopped <- c.Stopped()
			case <-ctx.Done():
			}
		}(c)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-stopped:
		// The kubelet handles SIGTERM itself and may stop a moment before ctx ends.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
			return err
		}
	}
}

// ReportedError is an error Run has already shown the user.
type ReportedError struct{ Err error }

func (e ReportedError) Error() string { return e.Err.Error() }
func (e ReportedError) Unwrap() error { return e.Err }

// stage is components that stop together.
type stage struct {
	cancel     context.CancelFunc
	components []*component.Component
}

// waitStopped waits for stopping components until deadline: a wedged one must not keep the
// process.
func waitStopped(components []*component.Component, deadline time.Time) {
	for _, c := range components {
		select {
		case <-c.Done():
			if err := c.Err(); err != nil && !errors.Is(err, context.Canceled) {
				klog.InfoS("Component stopped", "component", c.Name, "err", err)
			}
		case <-time.After(time.Until(deadline)):
			klog.InfoS("Component did not stop in time", "component", c.Name, "timeout", shutdownTimeout)
			return
		}
	}
}
