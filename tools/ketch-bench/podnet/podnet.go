// Package podnet measures a cluster's pod network from inside pods, with the netbench program
// (tools/ketch-bench/netbench) alone in an image: TCP stream throughput and request/response
// latency between pods (`ketch-bench multinode`), and DNS lookups through the cluster DNS
// (`ketch-bench addons`).
package podnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/pkg/images"
)

const (
	// Image is the netbench image, which the nodes never pull: it is imported.
	Image = "localhost/ketch-bench/netbench:v1"
	// Namespace holds the netbench pods.
	Namespace = "ketch-bench-net"
	program   = "./tools/ketch-bench/netbench"
)

// BuildImage builds netbench of the repository at repo as a static binary and puts it alone in
// a single-layer image, written as an OCI archive into work. It returns the archive's path.
func BuildImage(ctx context.Context, repo, work string, logf func(string, ...any)) (string, error) {
	bin := filepath.Join(work, "netbench")
	if err := harness.BuildGo(ctx, repo, program, bin, "-ldflags=-s -w"); err != nil {
		return "", fmt.Errorf("building netbench: %w", err)
	}
	config := images.ImageConfig{}
	config.Config.Entrypoint = []string{"/netbench"}
	tarball, err := images.BuildImage(Image, []images.Layer{{Files: []images.File{{Path: "/netbench", Mode: 0o755, Source: bin}}}}, config)
	if err != nil {
		return "", fmt.Errorf("building image %s: %w", Image, err)
	}
	path := filepath.Join(work, "netbench.tar")
	if err := os.WriteFile(path, tarball, 0o600); err != nil {
		return "", fmt.Errorf("writing image %s: %w", Image, err)
	}
	logf("image %s: %s", Image, report.Bytes(float64(len(tarball))))
	return path, nil
}

// Pod is a netbench pod on node that runs `netbench mode`.
func Pod(name, node, mode string) *corev1.Pod {
	grace := int64(1)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "netbench"}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "netbench", Image: Image, ImagePullPolicy: corev1.PullNever, Args: []string{mode},
			}},
		},
	}
}

// StartPods creates netbench pods in Namespace, which it creates first, and returns their IPs
// by pod name once all of them run.
func StartPods(ctx context.Context, cs kubernetes.Interface, pods ...*corev1.Pod) (map[string]string, error) {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create namespace: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := harness.WaitServiceAccount(pctx, cs, Namespace); err != nil {
		return nil, err
	}
	for _, p := range pods {
		if _, err := cs.CoreV1().Pods(Namespace).Create(pctx, p, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create pod %s: %w", p.Name, err)
		}
	}
	for {
		ips := map[string]string{}
		var waiting string
		for _, p := range pods {
			got, err := cs.CoreV1().Pods(Namespace).Get(pctx, p.Name, metav1.GetOptions{})
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
