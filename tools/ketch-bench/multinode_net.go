package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ketch-k8s/ketch/pkg/images"
)

const (
	netbenchImage = "localhost/ketch-bench/netbench:v1"
	netNamespace  = "ketch-bench-net"
	netServerPod  = "nb-server"
)

// netPath is one client pod's measurements against the server pod.
type netPath struct {
	pod, node string
	streams   []float64 // bytes/s, one per run
	rrP50     []time.Duration
	rrP99     []time.Duration
	mtu       int
}

// netResult is one cluster's network measurements.
type netResult struct {
	backend     string
	serverNode  string
	same, cross netPath
}

// buildNetbenchImage builds cmd/ketch-bench/netbench of the repository at repo as a static
// binary and puts it alone in a single-layer image, written as an OCI archive into work.
func buildNetbenchImage(ctx context.Context, repo, work string, logf func(string, ...any)) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(work, "netbench")
	build := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./cmd/ketch-bench/netbench")
	build.Dir = repo
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building netbench: %w\n%s", err, out)
	}
	config := images.ImageConfig{}
	config.Config.Entrypoint = []string{"/netbench"}
	tarball, err := images.BuildImage(netbenchImage, []images.Layer{{Files: []images.File{{Path: "/netbench", Mode: 0o755, Source: bin}}}}, config)
	if err != nil {
		return "", fmt.Errorf("building image %s: %w", netbenchImage, err)
	}
	path := filepath.Join(work, "netbench.tar")
	if err := os.WriteFile(path, tarball, 0o600); err != nil {
		return "", err
	}
	logf("image %s: %s", netbenchImage, fmtBytes(float64(len(tarball))))
	return path, nil
}

// importImage imports an image archive into a node's containerd, as a user would.
func importImage(ctx context.Context, ketchBin, socket, tarball string) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(cctx, ketchBin, "images", "import", "--address", socket, tarball).CombinedOutput(); err != nil {
		return fmt.Errorf("ketch images import %s: %w\n%s", tarball, err, out)
	}
	return nil
}

// networkPhase runs a netbench server pod on node 2 and client pods on node 2 and node 3, and
// measures TCP stream throughput and 1-byte request/response latency from each client to the
// server's pod IP. Runs alternate between the two clients so that drift in the machine's speed
// hits both alike.
func (c *mnCluster) networkPhase(ctx context.Context, tarball string) (netResult, error) {
	sz := c.b.sizes
	res := netResult{backend: c.backend, serverNode: c.node(mnServerNode),
		same:  netPath{pod: "nb-same", node: c.node(mnServerNode)},
		cross: netPath{pod: "nb-cross", node: c.node(mnAgent)}}
	for i := 1; i <= mnNodes; i++ {
		if err := importImage(ctx, c.b.opts.ketchBin, c.socket(i), tarball); err != nil {
			return res, fmt.Errorf("%s: %w", c.node(i), err)
		}
	}
	ips, err := startNetPods(ctx, c.client,
		netPod(netServerPod, res.serverNode, "server"),
		netPod(res.same.pod, res.same.node, "sleep"),
		netPod(res.cross.pod, res.cross.node, "sleep"))
	if err != nil {
		return res, err
	}
	serverIP := ips[netServerPod]
	for _, p := range []*netPath{&res.same, &res.cross} {
		out, err := c.kubectl(ctx, time.Minute, "exec", "-n", netNamespace, p.pod, "--", "/netbench", "mtu")
		if err != nil {
			return res, err
		}
		if p.mtu, err = strconv.Atoi(strings.TrimSpace(out)); err != nil {
			return res, fmt.Errorf("MTU of %s: %q", p.pod, out)
		}
	}
	c.b.logf("%s: server pod %s on %s; clients on %s (MTU %d) and %s (MTU %d)", c.backend, serverIP, res.serverNode,
		res.same.node, res.same.mtu, res.cross.node, res.cross.mtu)
	for r := range sz.streamRuns {
		for _, p := range []*netPath{&res.same, &res.cross} {
			var st struct {
				BytesPerSec float64 `json:"bytesPerSec"`
			}
			if err := c.netClient(ctx, p.pod, &st, "stream", serverIP, sz.streamSecs); err != nil {
				return res, err
			}
			var rr struct {
				P50us, P99us float64
			}
			if err := c.netClient(ctx, p.pod, &rr, "rr", serverIP, sz.rrCount); err != nil {
				return res, err
			}
			p.streams = append(p.streams, st.BytesPerSec)
			p.rrP50 = append(p.rrP50, time.Duration(rr.P50us*float64(time.Microsecond)))
			p.rrP99 = append(p.rrP99, time.Duration(rr.P99us*float64(time.Microsecond)))
			c.b.logf("%s run %d, %s → %s: stream %s, request/response p50 %s p99 %s", c.backend, r+1, p.node, res.serverNode,
				fmtRate(st.BytesPerSec), fmtDuration(p.rrP50[r]), fmtDuration(p.rrP99[r]))
		}
	}
	return res, nil
}

// netClient runs `netbench client MODE HOST N` in a client pod and decodes its JSON result.
func (c *mnCluster) netClient(ctx context.Context, pod string, v any, mode, host string, n int) error {
	out, err := c.kubectl(ctx, time.Duration(c.b.sizes.streamSecs)*time.Second+time.Minute,
		"exec", "-n", netNamespace, pod, "--", "/netbench", "client", mode, host, strconv.Itoa(n))
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), v); err != nil {
		return fmt.Errorf("netbench client %s in %s printed %q: %w", mode, pod, out, err)
	}
	return nil
}

// startNetPods creates netbench pods in the netbench namespace and returns their IPs by pod
// name once all of them run.
func startNetPods(ctx context.Context, cs kubernetes.Interface, pods ...*corev1.Pod) (map[string]string, error) {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: netNamespace}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create namespace: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for { // pods are refused until the namespace's default service account exists
		_, err := cs.CoreV1().ServiceAccounts(netNamespace).Get(pctx, "default", metav1.GetOptions{})
		if err == nil {
			break
		} else if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("wait for the default service account: %w", err)
		}
		select {
		case <-pctx.Done():
			return nil, fmt.Errorf("wait for the default service account: %w", pctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	for _, p := range pods {
		if _, err := cs.CoreV1().Pods(netNamespace).Create(pctx, p, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create pod %s: %w", p.Name, err)
		}
	}
	for {
		ips := map[string]string{}
		var waiting string
		for _, p := range pods {
			got, err := cs.CoreV1().Pods(netNamespace).Get(pctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("get pod %s: %w", p.Name, err)
			}
			switch got.Status.Phase {
			case corev1.PodRunning:
				if got.Status.PodIP != "" {
					ips[p.Name] = got.Status.PodIP
				}
			case corev1.PodFailed, corev1.PodSucceeded:
				return nil, fmt.Errorf("pod %s ended: %s %s", p.Name, got.Status.Reason, got.Status.Message)
			default:
				for _, st := range got.Status.ContainerStatuses {
					if w := st.State.Waiting; w != nil {
						waiting = fmt.Sprintf("%s waiting: %s %s", p.Name, w.Reason, w.Message)
					}
				}
			}
		}
		if len(ips) == len(pods) {
			return ips, nil
		}
		select {
		case <-pctx.Done():
			return nil, fmt.Errorf("%d of %d netbench pods Running after 2 minutes; %s", len(ips), len(pods), waiting)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func netPod(name, node, mode string) *corev1.Pod {
	grace := int64(1)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "netbench"}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "netbench", Image: netbenchImage, ImagePullPolicy: corev1.PullNever, Args: []string{mode},
			}},
		},
	}
}

// fmtRate shows a byte rate in Gbit/s and MB/s (decimal, as network rates are quoted).
func fmtRate(bytesPerSec float64) string {
	return fmt.Sprintf("%.2f Gbit/s (%s MB/s)", bytesPerSec*8/1e9, commas(int(bytesPerSec/1e6+0.5)))
}
