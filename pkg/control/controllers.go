package control

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	cmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	cmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	schedapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	schedoptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	"github.com/ketch-k8s/ketch/pkg/component"
	"github.com/ketch-k8s/ketch/pkg/config"
)

// StartControllerManager runs kube-controller-manager, allocating each node a /24 pod CIDR from
// the cluster CIDR and signing CSRs with the cluster CAs.
func StartControllerManager(ctx context.Context, c Config) (*component.Component, error) {
	s, certs := c.Server, c.PKI
	defaults := map[string]string{
		"allocate-node-cidrs":       "true",
		"authentication-kubeconfig": certs.ControllerKubeconfig,
		"authorization-kubeconfig":  certs.ControllerKubeconfig,
		"bind-address":              "127.0.0.1",
		"cluster-cidr":              s.ClusterCIDR.String(),
		"cluster-signing-kube-apiserver-client-cert-file": certs.ClientCA,
		"cluster-signing-kube-apiserver-client-key-file":  certs.ClientCAKey,
		"cluster-signing-kubelet-client-cert-file":        certs.ClientCA,
		"cluster-signing-kubelet-client-key-file":         certs.ClientCAKey,
		"cluster-signing-kubelet-serving-cert-file":       certs.ServerCA,
		"cluster-signing-kubelet-serving-key-file":        certs.ServerCAKey,
		"cluster-signing-legacy-unknown-cert-file":        certs.ServerCA,
		"cluster-signing-legacy-unknown-key-file":         certs.ServerCAKey,
		"configure-cloud-routes":                          "false",
		// tokencleaner deletes expired agent join tokens (bootstrap-token Secrets).
		"controllers":            "*,tokencleaner",
		"flex-volume-plugin-dir": s.Paths().VolumePluginDir(),
		// Upstream's 20/s (burst 30) makes a cold start wait: with
		// use-service-account-credentials every controller's service account is looked up,
		// created and given a token through one client before the controllers start, about 120
		// calls, which took 4.7 s (node-ipam, which the node's Ready waits for, is among the
		// last). 50/100 is what upstream already gives the kubelet and kube-scheduler;
		// kube-apiserver's priority and fairness still protects it from a runaway controller.
		"kube-api-burst":                   "100",
		"kube-api-qps":                     "50",
		"kubeconfig":                       certs.ControllerKubeconfig,
		"leader-elect":                     leaderElect(s),
		"node-cidr-mask-size":              "24",
		"profiling":                        "false",
		"root-ca-file":                     certs.ServerCA,
		"service-account-private-key-file": certs.ServiceAccountKey,
		"service-cluster-ip-range":         s.ServiceCIDR.String(),
		"use-service-account-credentials":  "true",
	}
	opts, err := cmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return nil, fmt.Errorf("kube-controller-manager options: %w", err)
	}
	known, disabled, aliases := cmapp.KnownControllers(), cmapp.ControllersDisabledByDefault(), cmapp.ControllerAliases()
	if err := parseFlags("kube-controller-manager", opts.Flags(known, disabled, aliases), component.CommandLine("kube-controller-manager", defaults, s.ControllerManagerArgs)); err != nil {
		return nil, err
	}
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, fmt.Errorf("kube-controller-manager feature gates: %w", err)
	}
	cfg, err := opts.Config(ctx, known, disabled, aliases)
	if err != nil {
		return nil, fmt.Errorf("kube-controller-manager options: %w", err)
	}
	cc := cfg.Complete()
	le := cc.ComponentConfig.Generic.LeaderElection
	if !le.LeaderElect {
		return component.Start("kube-controller-manager", func() error { return cmapp.Run(ctx, cc) }), nil
	}
	// ketch holds the lease (see lead); upstream's Run then runs the controllers directly.
	cc.ComponentConfig.Generic.LeaderElection.LeaderElect = false
	return component.Start("kube-controller-manager", func() error {
		return lead(ctx, "kube-controller-manager", le, cc.Kubeconfig, cc.EventRecorder, func(ctx context.Context) error { return cmapp.Run(ctx, cc) })
	}), nil
}

// WaitControllersBuilt waits until the local kube-controller-manager has built its controllers,
// for a server without leader election (which builds them at once); it returns at once for one
// with it, or with kube-controller-manager's secure port off.
//
// Why: upstream's CSI volume plugin keeps its node information in a package variable, which
// every Init of the plugin overwrites. kube-controller-manager inits it, with no node name, for
// each controller that handles volumes, as it builds them; the kubelet inits it with its node's
// name. In one process the kubelet's must come last, or its CSINode never initializes (the
// kubelet reports "resource name may not be empty" and exits after two minutes) and CSI drivers
// cannot register on the node. kube-controller-manager registers a health check per controller
// once all are built, so their names in /healthz?verbose say the builds are done.
func WaitControllersBuilt(ctx context.Context, s *config.Server) error {
	if s.HA() {
		return nil
	}
	args := s.ControllerManagerArgs
	port := component.Lookup(args, "secure-port", "10257")
	if port == "0" {
		return nil
	}
	host := component.Lookup(args, "bind-address", "127.0.0.1")
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	url := "https://" + net.JoinHostPort(host, port) + "/healthz?verbose"
	// A health check of this process's own listener: its certificate is one kube-controller-manager
	// made for itself in memory, which nothing else could check either (kubeadm's probes of it
	// do not).
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // see above
	}}
	defer client.CloseIdleConnections()
	known := cmapp.KnownControllers()
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		return builtIn(client, url, known), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for kube-controller-manager to build its controllers: %w", err)
	}
	return nil
}

// builtIn reports whether url's verbose health lists a check named after a controller.
func builtIn(client *http.Client, url string, controllers []string) bool {
	resp, err := client.Get(url)
	if err != nil {
		klog.V(2).InfoS("Waiting for kube-controller-manager's health", "err", err)
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		// "[+]attach-detach-controller ok", or [-] for a failing one: either way it is built.
		if name, _, _ := strings.Cut(strings.TrimLeft(line, "[+-] "), " "); slices.Contains(controllers, name) {
			return true
		}
	}
	return false
}

// leaderElect: servers that share a datastore elect one active kube-controller-manager and
// kube-scheduler among them; a lone bbolt server skips it, which also spares it the wait for
// its previous life's lease on a restart.
func leaderElect(s *config.Server) string { return strconv.FormatBool(s.HA()) }

// StartScheduler runs kube-scheduler.
func StartScheduler(ctx context.Context, c Config) (*component.Component, error) {
	s, certs := c.Server, c.PKI
	defaults := map[string]string{
		"authentication-kubeconfig": certs.SchedulerKubeconfig,
		"authorization-kubeconfig":  certs.SchedulerKubeconfig,
		"bind-address":              "127.0.0.1",
		"kubeconfig":                certs.SchedulerKubeconfig,
		"leader-elect":              leaderElect(s),
		"profiling":                 "false",
	}
	opts := schedoptions.NewOptions()
	if err := parseFlags("kube-scheduler", *opts.Flags, component.CommandLine("kube-scheduler", defaults, s.SchedulerArgs)); err != nil {
		return nil, err
	}
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, fmt.Errorf("kube-scheduler feature gates: %w", err)
	}
	cc, sched, err := schedapp.Setup(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("kube-scheduler options: %w", err)
	}
	if cc.LeaderElection == nil {
		return component.Start("kube-scheduler", func() error { return schedapp.Run(ctx, cc, sched) }), nil
	}
	// ketch holds the lease (see lead); upstream's Run then schedules directly. Without its own
	// election, Run returns an error when its context ends, which is a stop here.
	le := cc.ComponentConfig.LeaderElection
	cc.LeaderElection, cc.ComponentConfig.LeaderElection.LeaderElect = nil, false
	return component.Start("kube-scheduler", func() error {
		return lead(ctx, "kube-scheduler", le, cc.KubeConfig, nil, func(ctx context.Context) error {
			err := schedapp.Run(ctx, cc, sched)
			if ctx.Err() != nil {
				return nil
			}
			return err
		})
	}), nil
}
