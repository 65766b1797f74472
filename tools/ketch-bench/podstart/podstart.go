// Package podstart is the pod start-up measurement of `ketch-bench server`: many pods created
// at once on a node, each timed from its Create call until a watch sees it Running, with the
// CPU time the node spent meanwhile and its memory once they all run.
package podstart

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/bench/stats"
	"github.com/ketch-k8s/ketch/internal/harness"
)

// Config is the node the pods start on and how many.
type Config struct {
	Ketch     harness.Ketch // the node's binary and admin kubeconfig
	Socket    string        // the node's containerd
	ServerPID int           // the node's ketch server, whose CPU time and memory are read
	// ServerDone closes when the server exits: the measurement then fails at once instead of
	// at the timeout.
	ServerDone <-chan struct{}
	Pods       int
	Timeout    time.Duration // for all of it, from the namespace's creation to its deletion
	Logf       func(string, ...any)
}

// Stats are the pods' start-up.
type Stats struct {
	Latencies   []time.Duration // create call → watch sees Running, per pod
	AllRunning  time.Duration   // first create call → last pod Running
	DeleteTaken time.Duration   // namespace delete → namespace gone
	Image       string
	CPU         harness.CPUUse // from just before the creates to all Running
}

// Run creates the pods at once in a fresh namespace and times each until a watch sees it
// Running, samples the node's memory with all of them running, then deletes the namespace.
func Run(ctx context.Context, cfg Config) (Stats, harness.NodeMemory, error) {
	var st Stats
	var mem harness.NodeMemory
	image, err := pauseImage(ctx, cfg.Ketch, cfg.Socket)
	if err != nil {
		return st, mem, err
	}
	st.Image = image
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.Ketch.Kubeconfig)
	if err != nil {
		return st, mem, fmt.Errorf("admin kubeconfig: %w", err)
	}
	// All creates go out at once: client-side rate limiting would measure the client.
	rc.QPS, rc.Burst = float32(4*cfg.Pods), 4*cfg.Pods
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return st, mem, fmt.Errorf("client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	go func() { // a dead server fails the measurement at once instead of at the timeout
		select {
		case <-cfg.ServerDone:
			cancel()
		case <-pctx.Done():
		}
	}()

	ns, err := cs.CoreV1().Namespaces().Create(pctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ketch-bench-"}}, metav1.CreateOptions{})
	if err != nil {
		return st, mem, fmt.Errorf("create namespace: %w", err)
	}
	// The kubelet removes a deleted pod's logs in its housekeeping, which the server's stop may
	// cut short; the logs of the bench's pods must not stay behind on the host.
	defer removePodLogs(ns.Name)
	if err := harness.WaitServiceAccount(pctx, cs, ns.Name); err != nil {
		return st, mem, err
	}
	cfg.Logf("creating %d pods of %s in namespace %s", cfg.Pods, image, ns.Name)
	w, err := cs.CoreV1().Pods(ns.Name).Watch(pctx, metav1.ListOptions{})
	if err != nil {
		return st, mem, fmt.Errorf("watch pods: %w", err)
	}
	running := map[string]time.Time{}
	allRunning := make(chan error, 1)
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			at := time.Now()
			pod, ok := ev.Object.(*corev1.Pod)
			if ev.Type == watch.Error || !ok {
				allRunning <- fmt.Errorf("watch: %v", apierrors.FromObject(ev.Object))
				return
			}
			switch pod.Status.Phase {
			case corev1.PodRunning:
				if _, seen := running[pod.Name]; !seen {
					running[pod.Name] = at
				}
			case corev1.PodFailed:
				allRunning <- fmt.Errorf("pod %s failed: %s %s", pod.Name, pod.Status.Reason, pod.Status.Message)
				return
			}
			if len(running) == cfg.Pods {
				allRunning <- nil
				return
			}
		}
		allRunning <- fmt.Errorf("watch ended with %d of %d pods Running: %w", len(running), cfg.Pods, pctx.Err())
	}()

	cpuBefore, err := harness.ReadNodeCPU(cfg.ServerPID, cfg.Socket)
	if err != nil {
		return st, mem, err
	}
	created := make([]time.Time, cfg.Pods)
	createErrs := make([]error, cfg.Pods)
	var wg sync.WaitGroup
	begin := time.Now()
	for i := range cfg.Pods {
		wg.Go(func() {
			created[i] = time.Now()
			_, createErrs[i] = cs.CoreV1().Pods(ns.Name).Create(pctx, pausePod(i, image), metav1.CreateOptions{})
		})
	}
	wg.Wait()
	if err := errors.Join(createErrs...); err != nil {
		return st, mem, fmt.Errorf("create pods: %w", err)
	}
	if err := <-allRunning; err != nil {
		return st, mem, fmt.Errorf("%w; pods: %s", err, harness.PodSummary(ctx, cs, ns.Name))
	}
	cpuAfter, err := harness.ReadNodeCPU(cfg.ServerPID, cfg.Socket)
	if err != nil {
		return st, mem, err
	}
	st.CPU = cpuAfter.Since(cpuBefore)
	var last time.Time
	for i := range cfg.Pods {
		at := running[podName(i)]
		st.Latencies = append(st.Latencies, at.Sub(created[i]))
		if at.After(last) {
			last = at
		}
	}
	st.AllRunning = last.Sub(begin)
	pct := stats.Percentiles(slices.Clone(st.Latencies), 0.5, 0.99, 1)
	cfg.Logf("%d pods Running: p50 %s, p99 %s, max %s, all after %s", cfg.Pods, report.Duration(pct[0]), report.Duration(pct[1]), report.Duration(pct[2]), report.Duration(st.AllRunning))
	cfg.Logf("CPU meanwhile: %s", describeCPU(st.CPU))

	if mem, err = harness.ReadNodeMemory(cfg.ServerPID, cfg.Socket); err != nil {
		return st, mem, err
	}

	t0 := time.Now()
	if err := cs.CoreV1().Namespaces().Delete(pctx, ns.Name, metav1.DeleteOptions{}); err != nil {
		return st, mem, fmt.Errorf("delete namespace %s: %w", ns.Name, err)
	}
	for {
		_, err := cs.CoreV1().Namespaces().Get(pctx, ns.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		select {
		case <-pctx.Done():
			return st, mem, fmt.Errorf("namespace %s not gone within %s of the pod phase's start; pods: %s", ns.Name, cfg.Timeout, harness.PodSummary(ctx, cs, ns.Name))
		case <-time.After(100 * time.Millisecond):
		}
	}
	st.DeleteTaken = time.Since(t0)
	cfg.Logf("namespace %s deleted in %s", ns.Name, report.Duration(st.DeleteTaken))
	return st, mem, nil
}

// removePodLogs removes what the kubelet wrote to /var/log for a namespace's pods.
func removePodLogs(namespace string) {
	dirs, _ := filepath.Glob(filepath.Join("/var/log/pods", namespace+"_*"))
	links, _ := filepath.Glob(filepath.Join("/var/log/containers", "*_"+namespace+"_*"))
	for _, p := range append(dirs, links...) {
		os.RemoveAll(p)
	}
}

func podName(i int) string { return fmt.Sprintf("pause-%03d", i) }

func pausePod(i int, image string) *corev1.Pod {
	grace := int64(0)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: podName(i)},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "pause", Image: image, ImagePullPolicy: corev1.PullNever,
			}},
		},
	}
}

// pauseImage asks the node, as a user would, for the pause image it imported.
func pauseImage(ctx context.Context, k harness.Ketch, socket string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := k.Run(cctx, "", "images", "list", "--address", socket)
	if err != nil {
		return "", fmt.Errorf("ketch images list: %w\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "localhost/ketch/pause:") {
			return f[0], nil
		}
	}
	return "", fmt.Errorf("no localhost/ketch/pause image in `ketch images list`:\n%s", out)
}

func describeCPU(u harness.CPUUse) string {
	return fmt.Sprintf("host busy %s; ketch server %s; processes it waited for %s; shims %s; processes they waited for %s; rest %s",
		report.Seconds(u.Host), report.Seconds(u.Ketch), report.Seconds(u.KetchChildren), report.Seconds(u.Shims), report.Seconds(u.ShimChildren), report.Seconds(u.Rest()))
}
