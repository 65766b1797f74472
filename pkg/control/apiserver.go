package control

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/klog/v2"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	rbacrest "k8s.io/kubernetes/pkg/registry/rbac/rest"
	schedulingrest "k8s.io/kubernetes/pkg/registry/scheduling/rest"

	"github.com/ketch-k8s/ketch/pkg/component"
)

// ketch's patch of two of upstream's post-start hooks must be in every build: without it they
// sleep a second before their first try, and the API is not ready before they are done, on
// every start. `make` applies it (build/patches/kubernetes/README.md).
const _ = rbacrest.BootstrapTriesAtOnce && schedulingrest.BootstrapTriesAtOnce

// StartAPIServer runs kube-apiserver on the datastore's unix socket. It does not use the
// upstream cobra command, which installs a process-wide signal handler that only one component
// may install: the process shuts down through ctx instead.
func StartAPIServer(ctx context.Context, c Config) (*component.Component, error) {
	s, certs := c.Server, c.PKI
	issuer := "https://kubernetes.default.svc." + s.ClusterDomain
	defaults := map[string]string{
		"advertise-address":                  s.NodeIPs[0].String(),
		"allow-privileged":                   "true",
		"anonymous-auth":                     "false",
		"api-audiences":                      issuer,
		"authorization-mode":                 "Node,RBAC",
		"bind-address":                       s.BindAddress.String(),
		"client-ca-file":                     certs.ClientCA,
		"enable-admission-plugins":           "NodeRestriction",
		"etcd-servers":                       strings.Join(c.Etcd.Endpoints, ","),
		"kubelet-certificate-authority":      certs.ServerCA,
		"kubelet-client-certificate":         certs.APIServerKubeletClientCert,
		"kubelet-client-key":                 certs.APIServerKubeletClientKey,
		"kubelet-preferred-address-types":    "InternalIP,ExternalIP,Hostname",
		"profiling":                          strconv.FormatBool(s.EnablePprof),
		"proxy-client-cert-file":             certs.FrontProxyClientCert,
		"proxy-client-key-file":              certs.FrontProxyClientKey,
		"requestheader-allowed-names":        "system:auth-proxy",
		"requestheader-client-ca-file":       certs.RequestHeaderCA,
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-username-headers":     "X-Remote-User",
		"secure-port":                        strconv.Itoa(s.HTTPSPort),
		"service-account-issuer":             issuer,
		"service-account-key-file":           certs.ServiceAccountPub,
		"service-account-signing-key-file":   certs.ServiceAccountKey,
		"service-cluster-ip-range":           s.ServiceCIDR.String(),
		"service-node-port-range":            "30000-32767",
		// The in-process kubelet keeps its watches open until the process ends; without a grace
		// period kube-apiserver would wait its whole request timeout (60 s) for them at shutdown.
		"shutdown-watch-termination-grace-period": "1s",
		"storage-backend":                         "etcd3",
		"tls-cert-file":                           certs.APIServerCert,
		"tls-private-key-file":                    certs.APIServerKey,
	}
	for flag, file := range map[string]string{"etcd-cafile": c.Etcd.CAFile, "etcd-certfile": c.Etcd.CertFile, "etcd-keyfile": c.Etcd.KeyFile} {
		if file != "" {
			defaults[flag] = file
		}
	}
	opts := apiserveroptions.NewServerRunOptions()
	if err := parseFlags("kube-apiserver", opts.Flags(), component.CommandLine("kube-apiserver", defaults, s.APIServerArgs)); err != nil {
		return nil, err
	}
	if err := opts.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, fmt.Errorf("kube-apiserver feature gates: %w", err)
	}
	completed, err := opts.Complete(ctx)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver options: %w", err)
	}
	if errs := completed.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("kube-apiserver options: %w", utilerrors.NewAggregate(errs))
	}
	return component.Start("kube-apiserver", func() error {
		return run(stopWhenStarted(ctx, c.PKI.AdminKubeconfig), completed, c.WrapHandler)
	}), nil
}

// postStartTimeout bounds how long a stop waits for kube-apiserver's post-start hooks.
const postStartTimeout = 15 * time.Second

// stopWhenStarted is a context that ends once ctx has ended and kube-apiserver has finished
// starting (its /readyz, which includes every post-start hook, answers ok), or postStartTimeout
// after ctx ended. kube-apiserver exits the whole process (klog.Fatal) when one of its post-start
// hooks fails, and a hook that is still running when the server is told to stop fails, so a stop
// during start-up first lets the hooks finish.
func stopWhenStarted(ctx context.Context, kubeconfig string) context.Context {
	stop, cancel := context.WithCancel(context.WithoutCancel(ctx))
	context.AfterFunc(ctx, func() {
		defer cancel()
		wait, done := context.WithTimeout(context.Background(), postStartTimeout)
		defer done()
		if err := WaitReady(wait, kubeconfig); err != nil {
			klog.InfoS("Stopping kube-apiserver before it finished starting", "err", err)
		}
	})
	return stop
}

// run is upstream's Run with one addition: wrap goes around the outermost handler chain, in
// front of authentication, so that the supervisor answers on kube-apiserver's port.
func run(ctx context.Context, opts apiserveroptions.CompletedOptions, wrap func(http.Handler) http.Handler) error {
	config, err := apiserver.NewConfig(opts)
	if err != nil {
		return err
	}
	if wrap != nil {
		generic := &config.Aggregator.GenericConfig.Config
		build := generic.BuildHandlerChainFunc
		generic.BuildHandlerChainFunc = func(h http.Handler, c *genericapiserver.Config) http.Handler {
			return wrap(build(h, c))
		}
	}
	completed, err := config.Complete()
	if err != nil {
		return err
	}
	server, err := apiserver.CreateServerChain(completed)
	if err != nil {
		return err
	}
	prepared, err := server.PrepareRun()
	if err != nil {
		return err
	}
	return prepared.Run(ctx)
}
