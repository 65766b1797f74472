// Package e2e holds end-to-end tests: they start the real ketch binary as root on this machine,
// run real workloads on it and look at them as a user would.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const ns = "e2e"

// workloads is everything the test runs; the images are imported before it is applied.
const workloads = `
apiVersion: v1
kind: Namespace
metadata: {name: e2e}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: e2e}
data: {greeting: hello from a configmap}
---
apiVersion: v1
kind: Secret
metadata: {name: token, namespace: e2e}
stringData: {token: s3cr3t}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: e2e}
spec:
  replicas: 3
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: echo
        image: localhost/e2e/echo:docker
        imagePullPolicy: Never
        ports: [{containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /, port: 8080}
          periodSeconds: 1
        volumeMounts:
        - {name: settings, mountPath: /etc/settings}
        - {name: token, mountPath: /etc/token}
      volumes:
      - name: settings
        configMap: {name: settings}
      - name: token
        secret: {secretName: token}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: e2e}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo-nodeport, namespace: e2e}
spec:
  type: NodePort
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: e2e}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: localhost/e2e/echo:oci
    imagePullPolicy: Never
    command: [sleep, "100000"]
---
apiVersion: batch/v1
kind: Job
metadata: {name: count, namespace: e2e}
spec:
  completions: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: count
        image: localhost/e2e/echo:docker
        imagePullPolicy: Never
        command: [sh, -c, "seq 1 3 | wc -l"]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: everywhere, namespace: e2e}
spec:
  selector: {matchLabels: {app: everywhere}}
  template:
    metadata: {labels: {app: everywhere}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: sleeper
        image: localhost/e2e/echo:docker
        imagePullPolicy: Never
        command: [sleep, "100000"]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: e2e}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 8080}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: e2e}
spec:
  serviceName: web
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: localhost/e2e/echo:docker
        imagePullPolicy: Never
`

// TestServer brings up a single-node cluster with `ketch server` and runs the workloads a user
// would: a Deployment behind ClusterIP and NodePort Services, logs, exec, port-forward, a Job, a
// DaemonSet, a StatefulSet, ConfigMap and Secret volumes, container and pod failures, and a
// server restart that leaves the pods alone.
func TestServer(t *testing.T) {
	s := newServer(t, "--node-name", "ketch-e2e")
	ctx := context.Background()

	// An image tarball left in the images dir is imported when the node starts.
	s.seedEchoImage()
	s.start()

	t.Run("node", func(t *testing.T) {
		node, err := s.client.CoreV1().Nodes().Get(ctx, "ketch-e2e", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if v := node.Status.NodeInfo.KubeletVersion; !strings.HasPrefix(v, "v1.36.") {
			t.Errorf("kubelet version %q, want v1.36.x", v)
		}
		if len(node.Spec.PodCIDRs) == 0 || !strings.HasPrefix(node.Spec.PodCIDRs[0], "10.42.") {
			t.Errorf("pod CIDRs %v, want a /24 of 10.42.0.0/16", node.Spec.PodCIDRs)
		}
		fi, err := os.Stat(s.kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("admin kubeconfig mode %v, want 0600", fi.Mode().Perm())
		}
		out := s.kubectl("get", "nodes")
		if !regexp.MustCompile(`ketch-e2e\s+Ready\s+control-plane\s`).MatchString(out) {
			t.Errorf("kubectl get nodes:\n%s", out)
		}
		for _, phase := range []string{"datastore ready", "apiserver ready", "node registered", "node Ready"} {
			if !strings.Contains(s.output(), phase) {
				t.Errorf("start-up output lacks phase %q:\n%s", phase, s.output())
			}
		}
	})

	t.Run("profiling off by default", func(t *testing.T) { checkProfilingOff(t, s, "ketch-e2e") })

	t.Run("images", func(t *testing.T) {
		tarball := filepath.Join(t.TempDir(), "echo.tar")
		if err := os.WriteFile(tarball, echoImage(t, "localhost/e2e/echo:docker", false), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := s.ketch("", "images", "import", "--address", s.containerdSocket(), tarball); err != nil {
			t.Fatalf("ketch images import: %v\n%s", err, out)
		}
		out, err := s.ketch("", "images", "list", "--address", s.containerdSocket())
		if err != nil {
			t.Fatalf("ketch images list: %v\n%s", err, out)
		}
		for _, name := range []string{"localhost/e2e/echo:docker", "localhost/e2e/echo:oci", "localhost/ketch/pause:"} {
			if !strings.Contains(out, name) {
				t.Errorf("ketch images list lacks %s:\n%s", name, out)
			}
		}
	})
	// An agent started with this server's run dir (as one started with the default paths on a
	// server's host would be) is refused before it touches the server's sockets.
	t.Run("second node on the run dir", func(t *testing.T) {
		token := filepath.Join(s.dataDir, "server", "token")
		config := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(config, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := s.ketch("", "agent", "--data-dir", t.TempDir(), "--run-dir", s.runDir, "--config", config,
			"--node-name", "intruder", "--server", "https://127.0.0.1:6443", "--token-file", token)
		want := "run dir " + s.runDir + " is in use by another running ketch"
		if err == nil || !strings.Contains(out, want) {
			t.Fatalf("ketch agent on the server's run dir: %v, want %q:\n%s", err, want, out)
		}
		for _, sock := range []string{s.containerdSocket(), filepath.Join(s.runDir, "datastore.sock")} {
			if _, err := os.Stat(sock); err != nil {
				t.Errorf("the server's socket: %v", err)
			}
		}
		if out := s.kubectl("get", "nodes"); !strings.Contains(out, "ketch-e2e") || strings.Contains(out, "intruder") {
			t.Errorf("kubectl get nodes after the refused agent:\n%s", out)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	s.apply(workloads)
	s.kubectl("-n", ns, "rollout", "status", "deployment/echo", "--timeout=120s")
	s.kubectl("-n", ns, "wait", "pod/client", "--for=condition=Ready", "--timeout=120s")
	node, err := s.client.CoreV1().Nodes().Get(ctx, "ketch-e2e", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodeIP := internalIP(node)
	svc, err := s.client.CoreV1().Services(ns).Get(ctx, "echo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clusterIP := svc.Spec.ClusterIP
	replicas := echoPods(t, s)

	// kube-proxy programs a Service a moment after its endpoints turn ready, as on any cluster.
	t.Run("services from the host", func(t *testing.T) {
		for _, url := range []string{"http://" + clusterIP + "/", "http://" + net.JoinHostPort(nodeIP, "30080") + "/"} {
			eventually(t, time.Minute, "requests to "+url+" spread over the replicas", func() error {
				seen := map[string]int{}
				for i := 0; i < 60; i++ {
					body, err := httpGet(url)
					if err != nil {
						return err
					}
					seen[strings.TrimSpace(strings.TrimPrefix(body, "hostname="))]++
				}
				return spread(seen, replicas)
			})
		}
	})

	t.Run("services from a pod", func(t *testing.T) {
		for _, url := range []string{"http://" + clusterIP + "/", "http://" + net.JoinHostPort(nodeIP, "30080") + "/"} {
			eventually(t, time.Minute, "requests from a pod to "+url+" spread over the replicas", func() error {
				return spread(wgetFromClient(t, s, url, 40), replicas)
			})
		}
		podURL := "http://" + replicaIP(t, s, replicas[0]) + ":8080/"
		if seen := wgetFromClient(t, s, podURL, 5); seen[replicas[0]] != 5 {
			t.Errorf("pod-to-pod %s: %v", podURL, seen)
		}
	})

	t.Run("crictl", func(t *testing.T) { checkCrictl(t, s, replicas) })

	t.Run("logs", func(t *testing.T) {
		out := s.kubectl("-n", ns, "logs", replicas[0])
		if !strings.Contains(out, "listening on :8080") || !strings.Contains(out, "request GET /") {
			t.Errorf("kubectl logs %s:\n%s", replicas[0], out)
		}
	})

	t.Run("exec and volumes", func(t *testing.T) {
		if out := s.kubectl("-n", ns, "exec", replicas[1], "--", "cat", "/etc/settings/greeting"); out != "hello from a configmap" {
			t.Errorf("configmap volume: %q", out)
		}
		if out := s.kubectl("-n", ns, "exec", replicas[1], "--", "cat", "/etc/token/token"); out != "s3cr3t" {
			t.Errorf("secret volume: %q", out)
		}
		if out := strings.TrimSpace(s.kubectl("-n", ns, "exec", replicas[1], "--", "hostname")); out != replicas[1] {
			t.Errorf("exec hostname: %q, want %q", out, replicas[1])
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		pfCtx, cancel := context.WithCancel(ctx)
		cmd := exec.CommandContext(pfCtx, s.bin, "kubectl", "-n", ns, "port-forward", "pod/"+replicas[2], "0:8080")
		cmd.Env = append(os.Environ(), "KUBECONFIG="+s.kubeconfig)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cancel()
			cmd.Wait()
		}()
		local := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			re := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`)
			for sc.Scan() {
				if m := re.FindStringSubmatch(sc.Text()); m != nil {
					local <- m[1]
				}
			}
			io.Copy(io.Discard, stdout)
		}()
		select {
		case port := <-local:
			body, err := httpGet("http://127.0.0.1:" + port + "/")
			if err != nil || strings.TrimSpace(body) != "hostname="+replicas[2] {
				t.Errorf("through port-forward: %q, %v", body, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("kubectl port-forward did not report its local port")
		}
	})

	t.Run("job", func(t *testing.T) {
		s.kubectl("-n", ns, "wait", "job/count", "--for=condition=Complete", "--timeout=120s")
		if out := s.kubectl("-n", ns, "logs", "-l", "batch.kubernetes.io/job-name=count"); out != "3\n3\n" {
			t.Errorf("output of the job's two pods: %q, want 3 twice", out)
		}
	})

	t.Run("daemonset", func(t *testing.T) {
		eventually(t, 2*time.Minute, "DaemonSet ready on the node", func() error {
			ds, err := s.client.AppsV1().DaemonSets(ns).Get(ctx, "everywhere", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if ds.Status.DesiredNumberScheduled != 1 || ds.Status.NumberReady != 1 {
				return fmt.Errorf("desired %d, ready %d", ds.Status.DesiredNumberScheduled, ds.Status.NumberReady)
			}
			return nil
		})
	})

	t.Run("statefulset", func(t *testing.T) {
		s.kubectl("-n", ns, "rollout", "status", "statefulset/web", "--timeout=120s")
		for _, name := range []string{"web-0", "web-1"} {
			if out := strings.TrimSpace(s.kubectl("-n", ns, "exec", name, "--", "hostname")); out != name {
				t.Errorf("statefulset pod %s has hostname %q", name, out)
			}
		}
	})

	t.Run("container killed", func(t *testing.T) {
		pod, err := s.client.CoreV1().Pods(ns).Get(ctx, replicas[0], metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		id := strings.TrimPrefix(pod.Status.ContainerStatuses[0].ContainerID, "containerd://")
		restarts := pod.Status.ContainerStatuses[0].RestartCount
		if out, err := s.ketch("", "ctr", "--address", s.containerdSocket(), "--namespace", "k8s.io", "tasks", "kill", "--signal", "SIGKILL", id); err != nil {
			t.Fatalf("ketch ctr tasks kill: %v\n%s", err, out)
		}
		eventually(t, 2*time.Minute, "kubelet restarts the killed container", func() error {
			pod, err := s.client.CoreV1().Pods(ns).Get(ctx, replicas[0], metav1.GetOptions{})
			if err != nil {
				return err
			}
			st := pod.Status.ContainerStatuses[0]
			if st.RestartCount != restarts+1 || !st.Ready {
				return fmt.Errorf("restarts %d (was %d), ready %v", st.RestartCount, restarts, st.Ready)
			}
			return nil
		})
	})

	t.Run("pod deleted", func(t *testing.T) {
		s.kubectl("-n", ns, "delete", "pod", replicas[1], "--wait=true")
		eventually(t, 2*time.Minute, "ReplicaSet replaces the deleted pod", func() error {
			pods := readyEchoPods(s)
			if len(pods) != 3 {
				return fmt.Errorf("%d ready replicas: %v", len(pods), pods)
			}
			for _, p := range pods {
				if p == replicas[1] {
					return fmt.Errorf("deleted pod %s still listed", p)
				}
			}
			return nil
		})
	})

	t.Run("restart", func(t *testing.T) {
		before := podStates(t, s)
		podURL := "http://" + replicaIP(t, s, replicas[2]) + ":8080/"
		s.stop()
		// The containers keep running while the server is down.
		body, err := httpGet(podURL)
		if err != nil || !strings.Contains(body, replicas[2]) {
			t.Errorf("pod %s while the server is down: %q, %v", replicas[2], body, err)
		}
		s.start()
		after := podStates(t, s)
		for name, b := range before {
			a, ok := after[name]
			switch {
			case !ok:
				t.Errorf("pod %s is gone after the restart", name)
			case a != b:
				t.Errorf("pod %s changed across the restart: %s -> %s", name, b, a)
			}
		}
		for _, kind := range []string{"deployment/echo", "service/echo", "service/echo-nodeport", "configmap/settings",
			"secret/token", "job/count", "daemonset/everywhere", "statefulset/web", "pod/client"} {
			s.kubectl("-n", ns, "get", kind)
		}
		eventually(t, time.Minute, "Service answers after the restart", func() error {
			_, err := httpGet("http://" + clusterIP + "/")
			return err
		})
	})

	// The workloads are left running: the cleanup's ketch-killall.sh must stop them and leave
	// the host clean.
}

// checkCrictl runs `ketch crictl` and ketch as `crictl` through a link, as a user of the node
// would: with the node's dirs in the config file (KETCH_CONFIG_FILE), no endpoint given.
func checkCrictl(t *testing.T, s *server, replicas []string) {
	configFor := func(dataDir, runDir string) string {
		path := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, []byte("data-dir: "+dataDir+"\nrun-dir: "+runDir+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	run := func(config, bin string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "CRI_CONFIG_FILE=") && !strings.HasPrefix(kv, "CONTAINER_RUNTIME_ENDPOINT=") &&
				!strings.HasPrefix(kv, "IMAGE_SERVICE_ENDPOINT=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, "KETCH_CONFIG_FILE="+config)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	node := configFor(s.dataDir, s.runDir)
	link := filepath.Join(t.TempDir(), "crictl")
	if err := os.Symlink(s.bin, link); err != nil {
		t.Fatal(err)
	}

	out, err := run(node, s.bin, "crictl", "pods")
	if err != nil {
		t.Fatalf("ketch crictl pods: %v\n%s", err, out)
	}
	for _, name := range append([]string{"client"}, replicas...) {
		if !regexp.MustCompile(`\sReady\s+` + regexp.QuoteMeta(name) + `\s+` + ns + `\s`).MatchString(out) {
			t.Errorf("ketch crictl pods does not list pod %s as Ready in namespace %s:\n%s", name, ns, out)
		}
	}
	out, err = run(node, s.bin, "crictl", "ps")
	if err != nil {
		t.Fatalf("ketch crictl ps: %v\n%s", err, out)
	}
	for _, name := range replicas {
		if !regexp.MustCompile(`\sRunning\s+echo\s+\d+\s+\w+\s+` + regexp.QuoteMeta(name) + `\s+` + ns).MatchString(out) {
			t.Errorf("ketch crictl ps does not list the running echo container of %s:\n%s", name, out)
		}
	}
	// The crictl.yaml ketch keeps for it, not /etc/crictl.yaml.
	if _, err := os.Stat(filepath.Join(s.dataDir, "agent", "etc", "crictl.yaml")); err != nil {
		t.Errorf("ketch crictl's config file: %v", err)
	}

	// ketch run as crictl, through a link named so.
	out, err = run(node, link, "version")
	if err != nil {
		t.Fatalf("crictl version (a link to ketch): %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^RuntimeName:\s+containerd$`).MatchString(out) || !regexp.MustCompile(`(?m)^RuntimeApiVersion:\s+v1$`).MatchString(out) {
		t.Errorf("crictl version (a link to ketch):\n%s", out)
	}
	out, err = run(node, link, "--version")
	if err != nil || !strings.HasPrefix(out, "crictl version v1.36.") {
		t.Errorf("crictl --version (a link to ketch): %v: %q, want crictl version v1.36.x", err, out)
	}

	// On a data dir where no node has unpacked the runtime bundle, ketch crictl unpacks crictl
	// itself.
	fresh := t.TempDir()
	out, err = run(configFor(fresh, s.runDir), s.bin, "crictl", "pods", "--namespace", ns, "--label", "app=echo", "--state", "ready", "--quiet")
	if err != nil || len(strings.Fields(out)) != len(replicas) {
		t.Errorf("ketch crictl pods on a data dir without the bundle: %v: want %d pod IDs:\n%s", err, len(replicas), out)
	}
	if crictls, _ := filepath.Glob(filepath.Join(fresh, "data", "*", "bin", "crictl")); len(crictls) != 1 {
		t.Errorf("ketch crictl did not unpack crictl under %s: %v", fresh, crictls)
	}

	// Aimed at a run dir where no node runs: a clear error, from ketch crictl and from the link.
	idle := t.TempDir()
	for _, bin := range [][]string{{s.bin, "crictl", "ps"}, {link, "ps"}} {
		out, err := run(configFor(fresh, idle), bin[0], bin[1:]...)
		socket := filepath.Join(idle, "containerd", "containerd.sock")
		if err == nil || !strings.Contains(out, "no node is running on run dir "+idle) || !strings.Contains(out, socket) ||
			!strings.Contains(out, "start the node") {
			t.Errorf("%s with no node on the run dir: %v, want an error naming %s and saying to start the node:\n%s",
				strings.Join(bin, " "), err, socket, out)
		}
	}
}

func internalIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

func echoPods(t *testing.T, s *server) []string {
	t.Helper()
	pods := readyEchoPods(s)
	if len(pods) != 3 {
		t.Fatalf("want 3 ready echo pods, have %v", pods)
	}
	return pods
}

func readyEchoPods(s *server) []string {
	var names []string
	for _, p := range readyPods(s.client, ns, "app=echo") {
		names = append(names, p.Name)
	}
	return names
}

// readyPods are the Ready, not terminating pods of namespace ns matching selector, by name.
func readyPods(client kubernetes.Interface, ns, selector string) []corev1.Pod {
	list, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil
	}
	var pods []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && podReady(&p) {
			pods = append(pods, p)
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func replicaIP(t *testing.T, s *server, name string) string {
	t.Helper()
	p, err := s.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Status.PodIP
}

// podStates is each running pod's UID, IP and containers' IDs and restart counts: what must
// not change when the server restarts.
func podStates(t *testing.T, s *server) map[string]string {
	t.Helper()
	list, err := s.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, p := range list.Items {
		if p.Status.Phase != corev1.PodRunning {
			continue
		}
		var containers []string
		for _, c := range p.Status.ContainerStatuses {
			containers = append(containers, fmt.Sprintf("%s:%s:restarts=%d", c.Name, c.ContainerID, c.RestartCount))
		}
		b, _ := json.Marshal(map[string]any{"uid": p.UID, "ip": p.Status.PodIP, "containers": containers})
		states[p.Name] = string(b)
	}
	return states
}

// spread wants every replica, and nothing else, to have answered some of the requests.
func spread(seen map[string]int, replicas []string) error {
	for _, r := range replicas {
		if seen[r] == 0 {
			return fmt.Errorf("replica %s never answered: %v", r, seen)
		}
	}
	if len(seen) != len(replicas) {
		return fmt.Errorf("answers from %v, want only %v", seen, replicas)
	}
	return nil
}

// wgetFromClient makes n requests to url from the client pod and counts the answers by pod.
// (busybox's wget has no usable timeout option: -T crashes the static build.)
func wgetFromClient(t *testing.T, s *server, url string, n int) map[string]int {
	t.Helper()
	out := s.kubectl("-n", ns, "exec", "client", "--", "sh", "-c",
		fmt.Sprintf("for i in $(seq 1 %d); do wget -q -O - %s; done", n, url))
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		seen[strings.TrimPrefix(line, "hostname=")]++
	}
	return seen
}

// httpGet makes one request on a fresh connection, so that a Service spreads the requests.
func httpGet(url string) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), nil
}
