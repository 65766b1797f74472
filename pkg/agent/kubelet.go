package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	kubeletapp "k8s.io/kubernetes/cmd/kubelet/app"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/ketch-k8s/ketch/pkg/component"
)

// Kubelet is how the node's kubelet is set up.
type Kubelet struct {
	NodeName        string
	NodeIPs         []net.IP
	RootDir         string // the kubelet's own state: pods' volumes, plugins
	ConfigFile      string // where the KubeletConfiguration is written
	Kubeconfig      string
	ClientCA        string // verifies clients such as kube-apiserver
	ServingCert     string
	ServingKey      string
	RuntimeEndpoint string // containerd's CRI socket, unix://...
	ClusterDNS      net.IP
	ClusterDomain   string
	CgroupDriver    string // cgroupfs or systemd
	CgroupV1        bool
	CgroupRoot      string // the node's pods' cgroup; empty: the kubelet's default
	PodLogsDir      string
	Labels, Taints  []string
	ExtraArgs       []string // "flag=value", override ketch's
}

// StartKubelet writes the kubelet's configuration and runs it. The kubelet goes through its
// upstream command, which owns the process's signal handling: it is the only component that
// does, and it stops on SIGTERM by itself.
func StartKubelet(ctx context.Context, k Kubelet) (*component.Component, error) {
	c := kubeletConfiguration(k)
	if err := writeYAML(k.ConfigFile, c); err != nil {
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
		"config":            k.ConfigFile,
		"hostname-override": k.NodeName,
		"kubeconfig":        k.Kubeconfig,
		"node-ip":           strings.Join(ips, ","),
		"root-dir":          k.RootDir,
	}
	if len(k.Labels) > 0 {
		defaults["node-labels"] = strings.Join(k.Labels, ",")
	}
	if len(k.Taints) > 0 {
		defaults["register-with-taints"] = strings.Join(k.Taints, ",")
	}
	cmd := kubeletapp.NewKubeletCommand(ctx)
	cmd.SetArgs(component.Args(defaults, k.ExtraArgs))
	return component.StartUnstoppable(ctx, "kubelet", func() error { return cmd.ExecuteContext(ctx) }), nil
}

func kubeletConfiguration(k Kubelet) *kubeletv1beta1.KubeletConfiguration {
	c := &kubeletv1beta1.KubeletConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: kubeletv1beta1.SchemeGroupVersion.String(), Kind: "KubeletConfiguration"},
		Authentication: kubeletv1beta1.KubeletAuthentication{
			Anonymous: kubeletv1beta1.KubeletAnonymousAuthentication{Enabled: ptr.To(false)},
			Webhook:   kubeletv1beta1.KubeletWebhookAuthentication{Enabled: ptr.To(true), CacheTTL: metav1.Duration{Duration: 2 * time.Minute}},
			X509:      kubeletv1beta1.KubeletX509Authentication{ClientCAFile: k.ClientCA},
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
		ClusterDNS:               []string{k.ClusterDNS.String()},
		ClusterDomain:            k.ClusterDomain,
		ContainerRuntimeEndpoint: k.RuntimeEndpoint,
		EvictionHard: map[string]string{
			"imagefs.available": "5%",
			"nodefs.available":  "5%",
		},
		// Small machines often run with swap; the kubelet copes with it.
		FailSwapOn:         ptr.To(false),
		HealthzBindAddress: "127.0.0.1",
		// Per node, not /var/log/pods: a kubelet deletes the log directories of every pod it does
		// not know, which would be another node's on a shared machine.
		PodLogsDir:          k.PodLogsDir,
		ReadOnlyPort:        0,
		ResolverConfig:      ptr.To(resolvConf()),
		SerializeImagePulls: ptr.To(false),
		StaticPodPath:       filepath.Join(filepath.Dir(k.ConfigFile), "manifests"),
		TLSCertFile:         k.ServingCert,
		TLSPrivateKeyFile:   k.ServingKey,
	}
	if k.CgroupV1 {
		// The 1.36 kubelet refuses cgroup v1 unless told otherwise; many small hosts still have it.
		c.FailCgroupV1 = ptr.To(false)
	}
	return c
}

// resolvConf is the file pods with the Default DNS policy get; a host that only has a local
// stub resolver gets the upstream list systemd-resolved keeps.
func resolvConf() string {
	const stubUpstream = "/run/systemd/resolve/resolv.conf"
	b, err := os.ReadFile("/etc/resolv.conf")
	if err == nil && onlyLoopbackNameservers(string(b)) {
		if _, err := os.Stat(stubUpstream); err == nil {
			return stubUpstream
		}
	}
	return "/etc/resolv.conf"
}

func onlyLoopbackNameservers(resolv string) bool {
	found := false
	for _, line := range strings.Split(resolv, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		found = true
		if ip := net.ParseIP(f[1]); ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	return found
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
