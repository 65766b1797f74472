package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const addonsNS = "e2e-addons"

// addonDeployments are the bundled addons' Deployments in kube-system, by addon name.
var addonDeployments = map[string]string{
	"coredns": "coredns", "metrics-server": "metrics-server", "servicelb": "servicelb", "local-storage": "local-path-provisioner",
	"dashboard": "ketch-dashboard",
}

const addonWorkloads = `
apiVersion: v1
kind: Namespace
metadata: {name: e2e-addons}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: e2e-addons}
spec:
  replicas: 2
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: echo
        image: localhost/e2e/echo:oci
        imagePullPolicy: Never
        ports: [{containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /, port: 8080}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: e2e-addons}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: e2e-addons}
spec:
  type: ExternalName
  externalName: echo.e2e-addons.svc.cluster.local
---
apiVersion: v1
kind: Service
metadata: {name: data, namespace: e2e-addons}
spec:
  clusterIP: None
  selector: {app: data}
  ports: [{port: 8080}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: data, namespace: e2e-addons}
spec:
  serviceName: data
  replicas: 1
  selector: {matchLabels: {app: data}}
  template:
    metadata: {labels: {app: data}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: data
        image: localhost/e2e/echo:oci
        imagePullPolicy: Never
        # The first pod writes its name; later ones keep what is there.
        command: [sh, -c, "test -f /data/first || hostname > /data/first; exec /echo"]
        readinessProbe:
          exec: {command: [cat, /data/first]}
          periodSeconds: 1
        volumeMounts: [{name: vol, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: vol}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 64Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: e2e-addons}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: localhost/e2e/echo:oci
    imagePullPolicy: Never
    command: [sleep, "100000"]
`

// lbService is a LoadBalancer Service in front of the echo pods on port.
func lbService(name string, port int) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: Service
metadata: {name: %s, namespace: e2e-addons}
spec:
  type: LoadBalancer
  selector: {app: echo}
  ports: [{port: %d, targetPort: 8080}]
`, name, port)
}

// TestAddons brings up a server with its bundled addons and uses each as a user would: DNS names
// from a pod, LoadBalancer Services on the node's IP, a StatefulSet's volume through a restart,
// `kubectl top`, the manifests directory and --disable.
func TestAddons(t *testing.T) {
	// --enable-pprof: the heap check below needs a garbage collection on demand.
	s := newServer(t, "--node-name", "ketch-addons", "--enable-pprof")
	ctx := context.Background()
	s.seedEchoImage()
	start := time.Now()
	s.start()
	node, err := s.client.CoreV1().Nodes().Get(ctx, "ketch-addons", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodeIP := internalIP(node)
	manifestsDir := filepath.Join(s.dataDir, "server", "manifests")

	t.Run("addons ready from local images", func(t *testing.T) {
		for _, d := range addonDeployments {
			s.kubectl("-n", "kube-system", "rollout", "status", "deployment/"+d, "--timeout=180s")
		}
		pods, err := s.client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodSucceeded {
				continue // a finished local-path helper
			}
			if !podReady(&p) {
				t.Errorf("pod kube-system/%s is %s, not Ready", p.Name, p.Status.Phase)
			}
			for _, c := range p.Spec.Containers {
				if !strings.HasPrefix(c.Image, "localhost/ketch/addons:") || c.ImagePullPolicy != corev1.PullNever {
					t.Errorf("pod kube-system/%s runs %s (pull policy %s), want the node-made addon image, never pulled", p.Name, c.Image, c.ImagePullPolicy)
				}
			}
		}
		out, err := s.ketch("", "images", "list", "--address", s.containerdSocket())
		if err != nil {
			t.Fatalf("ketch images list: %v\n%s", err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			if name := strings.Fields(line)[0]; !strings.HasPrefix(name, "localhost/") {
				t.Errorf("containerd holds %s, which did not come from this node or a tarball", name)
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	// Before the workloads: the heap of a server that runs only its addons.
	t.Run("profiles and heap", func(t *testing.T) { checkProfilesAndHeap(t, s, "ketch-addons") })

	s.apply(addonWorkloads)
	s.kubectl("-n", addonsNS, "rollout", "status", "deployment/echo", "--timeout=120s")
	s.kubectl("-n", addonsNS, "wait", "pod/client", "--for=condition=Ready", "--timeout=120s")

	t.Run("dns", func(t *testing.T) { checkDNS(t, s, node) })
	t.Run("service load balancer", func(t *testing.T) { checkServiceLB(t, s, nodeIP) })
	t.Run("kubectl top", func(t *testing.T) {
		// The limit is counted from the server's start, as a user would see it.
		eventually(t, 90*time.Second-time.Since(start), "kubectl top nodes", func() error {
			out, err := s.ketch("", "kubectl", "top", "nodes", "--no-headers")
			if err != nil || !regexp.MustCompile(`(?m)^ketch-addons\s+\d+m\s+\d+%\s+\d+Mi\s+\d+%`).MatchString(out) {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		eventually(t, 60*time.Second, "kubectl top pods", func() error {
			out, err := s.ketch("", "kubectl", "top", "pods", "-n", "kube-system", "--no-headers")
			if err != nil || !regexp.MustCompile(`(?m)^coredns-\S+\s+\d+m\s+\d+Mi`).MatchString(out) {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		t.Logf("kubectl top answered %.1f s after the server started", time.Since(start).Seconds())
	})

	var volumeDir string
	t.Run("local-path volume", func(t *testing.T) { volumeDir = checkVolume(t, s) })
	t.Run("manifests directory", func(t *testing.T) { checkDeployer(t, s, manifestsDir) })

	// A restart with metrics-server disabled and a user's own coredns.yaml kept by .skip.
	coreDNS := filepath.Join(manifestsDir, "coredns.yaml")
	edited, err := os.ReadFile(coreDNS)
	if err != nil {
		t.Fatal(err)
	}
	edited = append(edited, []byte("# kept by the user\n")...)
	if err := os.WriteFile(coreDNS, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(coreDNS+".skip", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s.stop()
	s.args = append(s.args, "--disable", "metrics-server")
	s.start()

	t.Run("restart: .skip keeps a bundled manifest", func(t *testing.T) {
		if got, _ := os.ReadFile(coreDNS); string(got) != string(edited) {
			t.Errorf("coredns.yaml was overwritten despite coredns.yaml.skip")
		}
	})
	t.Run("restart: --disable removes a running addon", func(t *testing.T) {
		eventually(t, time.Minute, "metrics-server removed", func() error {
			_, errDeploy := s.client.AppsV1().Deployments("kube-system").Get(ctx, "metrics-server", metav1.GetOptions{})
			out, errAPI := s.ketch("", "kubectl", "get", "apiservice", "v1beta1.metrics.k8s.io")
			if !apierrors.IsNotFound(errDeploy) || errAPI == nil {
				return fmt.Errorf("deployment: %v; apiservice: %s", errDeploy, out)
			}
			return nil
		})
		if _, err := os.Stat(filepath.Join(manifestsDir, "metrics-server.yaml")); !os.IsNotExist(err) {
			t.Errorf("metrics-server.yaml still in the manifests directory: %v", err)
		}
		for _, addon := range []string{"coredns", "servicelb", "local-storage", "dashboard"} {
			s.kubectl("-n", "kube-system", "rollout", "status", "deployment/"+addonDeployments[addon], "--timeout=120s")
		}
	})
	t.Run("restart: volume kept, then deleted with its claim", func(t *testing.T) {
		checkVolumeAfterRestart(t, s, volumeDir)
	})
}

// resolve looks names up from the client pod; it returns name -> addresses (or "error: ...").
func resolve(t *testing.T, s *server, names ...string) map[string]string {
	t.Helper()
	out := s.kubectl(append([]string{"-n", addonsNS, "exec", "client", "--", "/echo", "resolve"}, names...)...)
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if name, addrs, ok := strings.Cut(line, " "); ok {
			got[name] = addrs
		}
	}
	return got
}

func checkDNS(t *testing.T, s *server, node *corev1.Node) {
	ctx := context.Background()
	svc, err := s.client.CoreV1().Services(addonsNS).Get(ctx, "echo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.kubectl("-n", addonsNS, "rollout", "status", "statefulset/data", "--timeout=120s")
	dataPod, err := s.client.CoreV1().Pods(addonsNS).Get(ctx, "data-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"echo":                              svc.Spec.ClusterIP, // search path
		"echo.e2e-addons":                   svc.Spec.ClusterIP,
		"echo.e2e-addons.svc.cluster.local": svc.Spec.ClusterIP,
		"data-0.data.e2e-addons.svc.cluster.local": dataPod.Status.PodIP, // headless Service pod record
		"data.e2e-addons.svc.cluster.local":        dataPod.Status.PodIP,
		"ext.e2e-addons.svc.cluster.local":         svc.Spec.ClusterIP, // ExternalName: CNAME to echo
		node.Name:                                  internalIP(node),   // NodeHosts
		"kubernetes.default":                       "10.43.0.1",
	}
	var names []string
	for n := range want {
		names = append(names, n)
	}
	// NodeHosts reaches CoreDNS through a ConfigMap volume and its reload, which takes a while.
	eventually(t, 90*time.Second, "names resolve from a pod", func() error {
		got := resolve(t, s, names...)
		var wrong []string
		for n, addr := range want {
			if got[n] != addr {
				wrong = append(wrong, fmt.Sprintf("%s: got %q, want %s", n, got[n], addr))
			}
		}
		if len(wrong) > 0 {
			return fmt.Errorf("%s", strings.Join(wrong, "; "))
		}
		return nil
	})
	if got := resolve(t, s, "nosuch.e2e-addons.svc.cluster.local")["nosuch.e2e-addons.svc.cluster.local"]; !strings.Contains(got, "no such host") {
		t.Errorf("an unknown Service name resolved: %q", got)
	}
}

// lbIngress returns the Service's ingress IPs.
func lbIngress(s *server, name string) ([]string, error) {
	svc, err := s.client.CoreV1().Services(addonsNS).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	var ips []string
	for _, in := range svc.Status.LoadBalancer.Ingress {
		ips = append(ips, in.IP)
	}
	return ips, nil
}

func checkServiceLB(t *testing.T, s *server, nodeIP string) {
	ctx := context.Background()
	s.apply(lbService("lb-a", 8081) + "---" + lbService("lb-b", 8082))
	for _, svc := range []struct {
		name string
		port int
	}{{"lb-a", 8081}, {"lb-b", 8082}} {
		eventually(t, time.Minute, svc.name+" gets the node IP", func() error {
			ips, err := lbIngress(s, svc.name)
			if err != nil || len(ips) != 1 || ips[0] != nodeIP {
				return fmt.Errorf("ingress %v (%v), want [%s]", ips, err, nodeIP)
			}
			return nil
		})
		url := fmt.Sprintf("http://%s/", net.JoinHostPort(nodeIP, fmt.Sprint(svc.port)))
		eventually(t, time.Minute, svc.name+" answers at "+url, func() error {
			body, err := httpGet(url)
			if err != nil || !strings.HasPrefix(body, "hostname=echo-") {
				return fmt.Errorf("%v: %q", err, body)
			}
			return nil
		})
	}

	// A third Service on lb-a's port cannot be served; the user is told on that Service.
	s.apply(lbService("lb-clash", 8081))
	eventually(t, time.Minute, "an Event on lb-clash", func() error {
		events, err := s.client.CoreV1().Events(addonsNS).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=lb-clash"})
		if err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "8081") && strings.Contains(e.Message, "lb-a") {
				return nil
			}
		}
		return fmt.Errorf("no Warning naming port 8081 and lb-a among %d events", len(events.Items))
	})
	if ips, _ := lbIngress(s, "lb-clash"); len(ips) != 0 {
		t.Errorf("lb-clash got ingress %v although lb-a holds its port", ips)
	}
	if body, _ := httpGet(fmt.Sprintf("http://%s/", net.JoinHostPort(nodeIP, "8081"))); !strings.HasPrefix(body, "hostname=echo-") {
		t.Errorf("lb-a stopped answering after the clash: %q", body)
	}

	// Once the holder is gone the waiting Service gets the port.
	s.kubectl("-n", addonsNS, "delete", "service", "lb-a")
	eventually(t, time.Minute, "lb-clash served after lb-a is deleted", func() error {
		ips, err := lbIngress(s, "lb-clash")
		if err != nil || len(ips) != 1 || ips[0] != nodeIP {
			return fmt.Errorf("ingress %v (%v)", ips, err)
		}
		return nil
	})

	// Deleting the Services leaves nothing behind: no answer, no rule for the node IP and ports.
	s.kubectl("-n", addonsNS, "delete", "service", "lb-b", "lb-clash")
	for _, port := range []string{"8081", "8082"} {
		addr := net.JoinHostPort(nodeIP, port)
		eventually(t, time.Minute, "nothing answers at "+addr, func() error {
			if body, err := httpGet("http://" + addr + "/"); err == nil {
				return fmt.Errorf("still answers: %q", body)
			}
			out, err := exec.Command("iptables-save", "-t", "nat").Output()
			if err != nil {
				return err
			}
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "-d "+nodeIP+"/32") && strings.Contains(line, "--dport "+port) {
					return fmt.Errorf("rule left: %s", line)
				}
			}
			return nil
		})
	}
}

// checkVolume proves the StatefulSet's claim is bound to a local-path volume in the node's
// storage dir and that the data outlives the pod. It returns the volume's directory.
func checkVolume(t *testing.T, s *server) string {
	ctx := context.Background()
	s.kubectl("-n", addonsNS, "rollout", "status", "statefulset/data", "--timeout=120s")
	pvc, err := s.client.CoreV1().PersistentVolumeClaims(addonsNS).Get(ctx, "vol-data-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "local-path" {
		t.Fatalf("claim vol-data-0: phase %s, class %v; want Bound to the default class local-path", pvc.Status.Phase, pvc.Spec.StorageClassName)
	}
	pv, err := s.client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pv.Spec.HostPath == nil || !strings.HasPrefix(pv.Spec.HostPath.Path, filepath.Join(s.dataDir, "storage")+"/") {
		t.Fatalf("volume %s is %+v, want a directory under %s/storage", pv.Name, pv.Spec.PersistentVolumeSource, s.dataDir)
	}
	dir := pv.Spec.HostPath.Path
	first, err := os.ReadFile(filepath.Join(dir, "first"))
	if err != nil || strings.TrimSpace(string(first)) != "data-0" {
		t.Fatalf("the pod's file in %s: %q, %v", dir, first, err)
	}
	uid := podUID(t, s, "data-0")
	s.kubectl("-n", addonsNS, "delete", "pod", "data-0", "--wait=true")
	eventually(t, 2*time.Minute, "data-0 back", func() error {
		if podUID(t, s, "data-0") == uid {
			return fmt.Errorf("not recreated yet")
		}
		return nil
	})
	s.kubectl("-n", addonsNS, "wait", "pod/data-0", "--for=condition=Ready", "--timeout=120s")
	// The new pod wrote nothing: the file is the first pod's.
	if out := s.kubectl("-n", addonsNS, "exec", "data-0", "--", "cat", "/data/first"); strings.TrimSpace(out) != "data-0" {
		t.Errorf("after the pod was replaced /data/first holds %q", out)
	}
	return dir
}

func checkVolumeAfterRestart(t *testing.T, s *server, dir string) {
	if dir == "" {
		t.Skip("no volume from the earlier step")
	}
	s.kubectl("-n", addonsNS, "wait", "pod/data-0", "--for=condition=Ready", "--timeout=120s")
	if out := s.kubectl("-n", addonsNS, "exec", "data-0", "--", "cat", "/data/first"); strings.TrimSpace(out) != "data-0" {
		t.Errorf("after the restart /data/first holds %q", out)
	}
	s.kubectl("-n", addonsNS, "delete", "statefulset", "data", "--wait=true")
	s.kubectl("-n", addonsNS, "delete", "pvc", "vol-data-0", "--wait=true")
	eventually(t, 2*time.Minute, "the volume's directory removed", func() error {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			return fmt.Errorf("%s still there (%v)", dir, err)
		}
		return nil
	})
}

func podUID(t *testing.T, s *server, name string) string {
	p, err := s.client.CoreV1().Pods(addonsNS).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(p.UID)
}

// configMapValue is data[key] of a ConfigMap in addonsNS, "" with ok=false if it does not exist.
func configMapValue(s *server, name, key string) (string, bool, error) {
	cm, err := s.client.CoreV1().ConfigMaps(addonsNS).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return cm.Data[key], true, nil
}

func configMaps(values map[string]string) string {
	var docs []string
	for name, v := range values {
		docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s, namespace: e2e-addons}\ndata: {v: %q}\n", name, v))
	}
	return strings.Join(docs, "---\n")
}

func waitConfigMap(t *testing.T, s *server, name, want string) {
	t.Helper()
	eventually(t, time.Minute, "ConfigMap "+name+" = "+want, func() error {
		got, ok, err := configMapValue(s, name, "v")
		switch {
		case err != nil:
			return err
		case want == "" && ok:
			return fmt.Errorf("still exists with %q", got)
		case want != "" && got != want:
			return fmt.Errorf("v=%q (exists: %v)", got, ok)
		}
		return nil
	})
}

func writeManifest(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func checkDeployer(t *testing.T, s *server, dir string) {
	ctx := context.Background()
	app, other := filepath.Join(dir, "app.yaml"), filepath.Join(dir, "other.yaml")

	// Applied when written, re-applied when edited, objects of a removed document deleted.
	writeManifest(t, app, configMaps(map[string]string{"app-one": "1", "app-two": "2"}))
	waitConfigMap(t, s, "app-one", "1")
	waitConfigMap(t, s, "app-two", "2")
	writeManifest(t, app, configMaps(map[string]string{"app-one": "1b"}))
	waitConfigMap(t, s, "app-one", "1b")
	waitConfigMap(t, s, "app-two", "")

	// A manifest that does not parse, and one the API refuses, are reported on their own and
	// the others still apply.
	writeManifest(t, filepath.Join(dir, "broken.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [unclosed\n")
	writeManifest(t, filepath.Join(dir, "refused.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: no-such-namespace}\n")
	writeManifest(t, other, configMaps(map[string]string{"other": "1"}))
	waitConfigMap(t, s, "other", "1")
	for file, reason := range map[string]string{"broken.yaml": "ParseFailed", "refused.yaml": "ApplyFailed"} {
		eventually(t, time.Minute, "a "+reason+" Event for "+file, func() error {
			events, err := s.client.CoreV1().Events("kube-system").List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for _, e := range events.Items {
				if e.Type == corev1.EventTypeWarning && e.Reason == reason && strings.HasPrefix(e.Message, file+": ") {
					return nil
				}
			}
			return fmt.Errorf("none among %d kube-system events", len(events.Items))
		})
		if !strings.Contains(s.logTail(400), file) {
			t.Errorf("the server log does not mention %s", file)
		}
	}

	// .skip: app.yaml is neither re-applied nor pruned while it is there.
	writeManifest(t, app+".skip", "")
	writeManifest(t, app, configMaps(map[string]string{"app-one": "skipped"}))
	writeManifest(t, other, configMaps(map[string]string{"other": "2"}))
	waitConfigMap(t, s, "other", "2") // the controller has looked at the directory since
	time.Sleep(3 * time.Second)
	if got, _, _ := configMapValue(s, "app-one", "v"); got != "1b" {
		t.Errorf("app.yaml was applied despite app.yaml.skip: app-one v=%q", got)
	}
	if err := os.Remove(app); err != nil {
		t.Fatal(err)
	}
	writeManifest(t, other, configMaps(map[string]string{"other": "3"}))
	waitConfigMap(t, s, "other", "3")
	time.Sleep(3 * time.Second)
	if _, ok, _ := configMapValue(s, "app-one", "v"); !ok {
		t.Errorf("removing app.yaml while app.yaml.skip exists deleted its objects")
	}

	// Without .skip, removing the file removes its objects.
	writeManifest(t, app, configMaps(map[string]string{"app-one": "back"}))
	if err := os.Remove(app + ".skip"); err != nil {
		t.Fatal(err)
	}
	waitConfigMap(t, s, "app-one", "back")
	for _, f := range []string{app, other, filepath.Join(dir, "broken.yaml"), filepath.Join(dir, "refused.yaml")} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	waitConfigMap(t, s, "app-one", "")
	waitConfigMap(t, s, "other", "")
}
