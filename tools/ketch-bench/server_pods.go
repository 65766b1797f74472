package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
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
)

// podPhase creates pods at once in a fresh namespace and times each until a watch sees it
// Running, samples memory with all of them running, then deletes the namespace.
func (b *serverBench) podPhase(ctx context.Context, dirs *nodeDirs) (podStats, memSample, error) {
	var st podStats
	var mem memSample
	image, err := pauseImage(ctx, b.opts.ketchBin, dirs.socket())
	if err != nil {
		return st, mem, err
	}
	st.image = image
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dirs.data, "admin.yaml"))
	if err != nil {
		return st, mem, err
	}
	// All creates go out at once: client-side rate limiting would measure the client.
	cfg.QPS, cfg.Burst = float32(4*b.sizes.pods), 4*b.sizes.pods
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return st, mem, err
	}
	pctx, cancel := context.WithTimeout(ctx, b.sizes.podsTimeout)
	defer cancel()
	go func() { // a dead server fails the phase at once instead of at the timeout
		select {
		case <-b.node.done:
			cancel()
		case <-pctx.Done():
		}
	}()
	fail := func(err error) (podStats, memSample, error) {
		if b.node.exited() {
			return st, mem, b.node.exitError()
		}
		return st, mem, err
	}

	ns, err := cs.CoreV1().Namespaces().Create(pctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ketch-bench-"}}, metav1.CreateOptions{})
	if err != nil {
		return fail(fmt.Errorf("create namespace: %w", err))
	}
	// The kubelet removes a deleted pod's logs in its housekeeping, which the server's stop may
	// cut short; the logs of the bench's pods must not stay behind on the host.
	defer removePodLogs(ns.Name)
	// Pods are refused until the namespace's default service account exists.
	for {
		if _, err := cs.CoreV1().ServiceAccounts(ns.Name).Get(pctx, "default", metav1.GetOptions{}); err == nil {
			break
		} else if !apierrors.IsNotFound(err) {
			return fail(fmt.Errorf("wait for the default service account: %w", err))
		}
		select {
		case <-pctx.Done():
			return fail(fmt.Errorf("wait for the default service account: %w", pctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
	b.logf("creating %d pods of %s in namespace %s", b.sizes.pods, image, ns.Name)
	w, err := cs.CoreV1().Pods(ns.Name).Watch(pctx, metav1.ListOptions{})
	if err != nil {
		return fail(fmt.Errorf("watch pods: %w", err))
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
			if len(running) == b.sizes.pods {
				allRunning <- nil
				return
			}
		}
		allRunning <- fmt.Errorf("watch ended with %d of %d pods Running: %w", len(running), b.sizes.pods, pctx.Err())
	}()

	cpuBefore, err := nodeCPU(b.node.pid(), dirs.socket())
	if err != nil {
		return st, mem, err
	}
	created := make([]time.Time, b.sizes.pods)
	createErrs := make([]error, b.sizes.pods)
	var wg sync.WaitGroup
	begin := time.Now()
	for i := range b.sizes.pods {
		wg.Go(func() {
			created[i] = time.Now()
			_, createErrs[i] = cs.CoreV1().Pods(ns.Name).Create(pctx, benchPod(i, image), metav1.CreateOptions{})
		})
	}
	wg.Wait()
	if err := errors.Join(createErrs...); err != nil {
		return fail(fmt.Errorf("create pods: %w", err))
	}
	if err := <-allRunning; err != nil {
		return fail(fmt.Errorf("%w; pods: %s", err, podSummary(ctx, cs, ns.Name)))
	}
	cpuAfter, err := nodeCPU(b.node.pid(), dirs.socket())
	if err != nil {
		return st, mem, err
	}
	st.cpu = cpuAfter.since(cpuBefore)
	var last time.Time
	for i := range b.sizes.pods {
		at := running[podName(i)]
		st.latencies = append(st.latencies, at.Sub(created[i]))
		if at.After(last) {
			last = at
		}
	}
	st.allRunning = last.Sub(begin)
	pct := percentiles(slices.Clone(st.latencies), 0.5, 0.99, 1)
	b.logf("%d pods Running: p50 %s, p99 %s, max %s, all after %s", b.sizes.pods, fmtDuration(pct[0]), fmtDuration(pct[1]), fmtDuration(pct[2]), fmtDuration(st.allRunning))
	b.logf("CPU meanwhile: %s", st.cpu)

	if mem, err = nodeMemory(b.node.pid(), dirs.socket()); err != nil {
		return st, mem, err
	}
	b.logf("PSS with %d pods %s", b.sizes.pods, mem)

	t0 := time.Now()
	if err := cs.CoreV1().Namespaces().Delete(pctx, ns.Name, metav1.DeleteOptions{}); err != nil {
		return fail(fmt.Errorf("delete namespace %s: %w", ns.Name, err))
	}
	for {
		_, err := cs.CoreV1().Namespaces().Get(pctx, ns.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if pctx.Err() != nil {
			return fail(fmt.Errorf("namespace %s not gone within %s of the pod phase's start; pods: %s", ns.Name, b.sizes.podsTimeout, podSummary(ctx, cs, ns.Name)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	st.deleteTaken = time.Since(t0)
	b.logf("namespace %s deleted in %s", ns.Name, fmtDuration(st.deleteTaken))
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

func benchPod(i int, image string) *corev1.Pod {
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

// podSummary counts the namespace's pods by phase, for error messages.
func podSummary(ctx context.Context, cs kubernetes.Interface, ns string) string {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	list, err := cs.CoreV1().Pods(ns).List(cctx, metav1.ListOptions{})
	if err != nil {
		return "(list: " + err.Error() + ")"
	}
	phases := map[corev1.PodPhase]int{}
	var example string
	for _, p := range list.Items {
		phases[p.Status.Phase]++
		if p.Status.Phase != corev1.PodRunning && example == "" {
			for _, cs := range p.Status.ContainerStatuses {
				if w := cs.State.Waiting; w != nil {
					example = fmt.Sprintf("; %s waiting: %s %s", p.Name, w.Reason, w.Message)
				}
			}
		}
	}
	return fmt.Sprintf("%v%s", phases, example)
}

// pauseImage asks the node, as a user would, for the pause image it imported.
func pauseImage(ctx context.Context, bin, socket string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(cctx, bin, "images", "list", "--address", socket).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ketch images list: %w\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "localhost/ketch/pause:") {
			return f[0], nil
		}
	}
	return "", fmt.Errorf("no localhost/ketch/pause image in `ketch images list`:\n%s", out)
}
