package control

import (
	"context"
	"fmt"
	"strconv"

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
