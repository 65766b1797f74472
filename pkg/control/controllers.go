package control

import (
	"context"
	"fmt"

	cmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	cmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	schedapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	schedoptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	"github.com/ketch-k8s/ketch/pkg/component"
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
		"controllers":                      "*,tokencleaner",
		"flex-volume-plugin-dir":           s.Paths().VolumePluginDir(),
		"kubeconfig":                       certs.ControllerKubeconfig,
		"leader-elect":                     "false",
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
	return component.Start("kube-controller-manager", func() error { return cmapp.Run(ctx, cfg.Complete()) }), nil
}

// StartScheduler runs kube-scheduler.
func StartScheduler(ctx context.Context, c Config) (*component.Component, error) {
	s, certs := c.Server, c.PKI
	defaults := map[string]string{
		"authentication-kubeconfig": certs.SchedulerKubeconfig,
		"authorization-kubeconfig":  certs.SchedulerKubeconfig,
		"bind-address":              "127.0.0.1",
		"kubeconfig":                certs.SchedulerKubeconfig,
		"leader-elect":              "false",
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
	return component.Start("kube-scheduler", func() error { return schedapp.Run(ctx, cc, sched) }), nil
}
