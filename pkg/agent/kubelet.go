package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logsapi "k8s.io/component-base/logs/api/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	kubeletapp "k8s.io/kubernetes/cmd/kubelet/app"
	"k8s.io/kubernetes/pkg/volume/csi"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/ketch-k8s/ketch/pkg/component"
)

// ketch's patch of upstream's CSI volume plugin must be in every build: without it the kubelet's
// CSI node information is lost whenever kube-controller-manager, in the same process, builds its
// controllers after the kubelet started. `make` applies it; build/patches/kubernetes/README.md
// says how to build without make.
const _ = csi.KubeletOwnsNodeInfo

// kubeletConfig is how the node's kubelet is set up, beyond the node's own settings.
type kubeletConfig struct {
	Node
	RuntimeEndpoint string // containerd's CRI socket, unix://...
	CgroupDriver    string // cgroupfs or systemd
	CgroupV1        bool
	CgroupRoot      string // the node's pods' cgroup; empty: the kubelet's default
	ResolvConf      string // for pods with the Default DNS policy (podResolvConf)
}

// startKubelet writes the kubelet's configuration and runs it until ctx ends. The kubelet goes
// through its upstream command: it also installs a handler for SIGTERM and SIGINT (the first
// stops it, a second exits the process, as ketch's own handler does) and applies its logging
// configuration to the whole process, which therefore carries ketch's verbosity.
func startKubelet(ctx context.Context, k kubeletConfig) (*component.Component, error) {
	paths := k.Paths()
	c := kubeletConfiguration(k)
	if err := writeYAML(paths.KubeletConfigFile(), c); err != nil {
		return nil, err
	}
	// The kubelet polls for the static pod dir every second and logs an error while it is missing.
	if err := os.MkdirAll(c.StaticPodPath, 0o700); err != nil {
		return nil, fmt.Errorf("creating the static pod dir: %w", err)
	}
	ips := make([]string, len(k.NodeIPs))
	for i, ip := range k.NodeIPs {
		ips[i] = ip.String()
	}
	defaults := map[string]string{
		"config":            paths.KubeletConfigFile(),
		"hostname-override": k.NodeName,
		"kubeconfig":        k.Certs.KubeletKubeconfig,
		"node-ip":           strings.Join(ips, ","),
		"root-dir":          paths.KubeletDir(),
		"volume-plugin-dir": paths.VolumePluginDir(),
	}
	if len(k.Labels) > 0 {
		defaults["node-labels"] = strings.Join(k.Labels, ",")
	}
	if len(k.Taints) > 0 {
		defaults["register-with-taints"] = strings.Join(k.Taints, ",")
	}
	cmd := kubeletapp.NewKubeletCommand(ctx)
	cmd.SetArgs(component.CommandLine("kubelet", defaults, k.KubeletArgs))
	return component.StartUnstoppable(ctx, "kubelet", func() error { return cmd.ExecuteContext(ctx) }), nil
}

func kubeletConfiguration(k kubeletConfig) *kubeletv1beta1.KubeletConfiguration {
	paths := k.Paths()
	c := &kubeletv1beta1.KubeletConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: kubeletv1beta1.SchemeGroupVersion.String(), Kind: "KubeletConfiguration"},
		Authentication: kubeletv1beta1.KubeletAuthentication{
			Anonymous: kubeletv1beta1.KubeletAnonymousAuthentication{Enabled: ptr.To(false)},
			Webhook:   kubeletv1beta1.KubeletWebhookAuthentication{Enabled: ptr.To(true), CacheTTL: metav1.Duration{Duration: 2 * time.Minute}},
			X509:      kubeletv1beta1.KubeletX509Authentication{ClientCAFile: k.Certs.ClientCA},
		},
		Authorization: kubeletv1beta1.KubeletAuthorization{
			Mode: kubeletv1beta1.KubeletAuthorizationModeWebhook,
			Webhook: kubeletv1beta1.KubeletWebhookAuthorization{
				CacheAuthorizedTTL:   metav1.Duration{Duration: 5 * time.Minute},
				CacheUnauthorizedTTL: metav1.Duration{Duration: 30 * time.Second},
			},
		},
		CgroupDriver:             k.CgroupDriver,
		CgroupRoot:               k.CgroupRoot,
		ClusterDNS:               []string{k.Cluster.ClusterDNS.String()},
		ClusterDomain:            k.Cluster.ClusterDomain,
		ContainerRuntimeEndpoint: k.RuntimeEndpoint,
		// Upstream serves profiles by default; ketch only with --enable-pprof (config.Node).
		EnableProfilingHandler: ptr.To(k.EnablePprof),
		EvictionHard: map[string]string{
			"imagefs.available": "5%",
			"nodefs.available":  "5%",
		},
		// Small machines often run with swap; the kubelet copes with it.
		FailSwapOn:         ptr.To(false),
		HealthzBindAddress: "127.0.0.1",
		// Per node, not /var/log/pods: a kubelet deletes the log directories of every pod it does
		// not know, which would be another node's on a shared machine.
		PodLogsDir:          paths.PodLogsDir(),
		ReadOnlyPort:        0,
		ResolverConfig:      ptr.To(k.ResolvConf),
		SerializeImagePulls: ptr.To(false),
		StaticPodPath:       paths.StaticPodDir(),
		TLSCertFile:         k.Certs.KubeletServingCert,
		TLSPrivateKeyFile:   k.Certs.KubeletServingKey,
	}
	// The kubelet applies this to klog for the whole process: it must say what ketch set.
	c.Logging.Verbosity = logsapi.VerbosityLevel(k.Verbosity())
	if k.CgroupV1 {
		// The 1.36 kubelet refuses cgroup v1 unless told otherwise; many small hosts still have it.
		c.FailCgroupV1 = ptr.To(false)
	}
	return c
}

func writeYAML(path string, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
