package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ketch-k8s/ketch/internal/dockerd"
	"github.com/ketch-k8s/ketch/internal/dockertest"
	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/internal/testutil"
	"github.com/ketch-k8s/ketch/pkg/kubeclient"
)

// nodeImage is the node image the docker tests build from the Dockerfile, in their engine.
const nodeImage = "localhost/ketch:e2e"

// buildNodeImage builds the repository's Dockerfile against the ketch binary under test, as
// make image does.
func buildNodeImage(t *testing.T, e *dockertest.Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := e.BuildNodeImage(ctx, testutil.KetchBinary(t), filepath.Join(testutil.RepoRoot(), "Dockerfile"), nodeImage); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Run("rmi", nodeImage) })
}

// dockerCluster is a cluster made by scripts/ketch-docker-cluster.sh in the test's engine.
type dockerCluster struct {
	t          *testing.T
	e          *dockertest.Engine
	name       string
	home       string // HOME of the script: the kubeconfig goes below it
	client     kubernetes.Interface
	kubeconfig string
}

func (c *dockerCluster) script(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(testutil.RepoRoot(), "scripts", "ketch-docker-cluster.sh"), args...)
	cmd.Env = append(os.Environ(), "DOCKER="+c.e.Docker(), "HOME="+c.home)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *dockerCluster) server() string     { return "ketch-" + c.name + "-server" }
func (c *dockerCluster) agent(i int) string { return fmt.Sprintf("ketch-%s-agent-%d", c.name, i) }

func (c *dockerCluster) kubectl(args ...string) string {
	c.t.Helper()
	out, err := c.kubectlErr(args...)
	if err != nil {
		c.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *dockerCluster) kubectlErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	return harness.Ketch{Bin: testutil.KetchBinary(c.t), Kubeconfig: c.kubeconfig}.Kubectl(ctx, args...)
}

func (c *dockerCluster) apply(manifest string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := (harness.Ketch{Bin: testutil.KetchBinary(c.t), Kubeconfig: c.kubeconfig}).Run(ctx, manifest, "kubectl", "apply", "-f", "-"); err != nil {
		c.t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

// readyNodes are the nodes whose Ready condition is True and whose kubelet renewed the node's
// lease after since (every 10 s: the Ready condition itself is only posted again when it changes
// or after 5 minutes, so it cannot tell a restarted kubelet from the one before).
func (c *dockerCluster) readyNodes(since time.Time) map[string]*corev1.Node {
	ready := map[string]*corev1.Node{}
	list, err := c.client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return ready
	}
	for i := range list.Items {
		n := &list.Items[i]
		if !nodeReady(n) {
			continue
		}
		if !since.IsZero() {
			lease, err := c.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(context.Background(), n.Name, metav1.GetOptions{})
			if err != nil || lease.Spec.RenewTime == nil || lease.Spec.RenewTime.Time.Before(since) {
				continue
			}
		}
		ready[n.Name] = n
	}
	return ready
}

// containerPID is the host PID of a container's first process.
func (c *dockerCluster) containerPID(name string) int {
	c.t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(c.e.Must(c.t, "inspect", "--format", "{{.State.Pid}}", name)))
	if err != nil || pid <= 0 {
		c.t.Fatalf("container %s has no process: %v", name, err)
	}
	return pid
}

// zombies lists the zombie processes in a container's PID namespace, seen from the host.
func zombies(pid int) ([]string, error) {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return nil, err
	}
	procs, err := harness.Procs()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range procs {
		if other, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p.PID)); err != nil || other != ns {
			continue
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID)); err == nil {
			// The state follows the command's closing parenthesis.
			if s := string(st); strings.HasPrefix(strings.TrimSpace(s[strings.LastIndexByte(s, ')')+1:]), "Z") {
				out = append(out, fmt.Sprintf("%d %s", p.PID, strings.Join(p.Argv, " ")))
			}
		}
	}
	return out, nil
}

// echoDeployment is a Deployment of the tests' echo image in namespace dk, its pods labelled
// app=name; spread puts at most one more on any node than on another.
func echoDeployment(name string, replicas int, spread bool) string {
	constraint := ""
	if spread {
		constraint = fmt.Sprintf(`
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: %s}}}`, name)
	}
	return fmt.Sprintf(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: dk}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      terminationGracePeriodSeconds: 1%[3]s
      containers:
      - name: echo
        image: localhost/e2e/echo:oci
        imagePullPolicy: Never
        readinessProbe:
          httpGet: {path: /, port: 8080}
          periodSeconds: 1
`, name, replicas, constraint)
}

// dockerWorkload is three echo replicas spread over the nodes, behind a ClusterIP, a NodePort
// and a LoadBalancer Service.
var dockerWorkload = `
apiVersion: v1
kind: Namespace
metadata: {name: dk}
---` + echoDeployment("echo", 3, true) + `---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: dk}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo-nodeport, namespace: dk}
spec:
  type: NodePort
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080, nodePort: 30082}]
---
apiVersion: v1
kind: Service
metadata: {name: echo-lb, namespace: dk}
spec:
  type: LoadBalancer
  selector: {app: echo}
  ports: [{port: 8082, targetPort: 8080}]
`

// TestDockerCluster builds the node image from the Dockerfile and runs a server and two agents
// in Docker with scripts/ketch-docker-cluster.sh, as a user would: every node Ready with the
// addons rolled out; a workload spread over the nodes reached through its ClusterIP from every
// node, and through a NodePort and a LoadBalancer from this machine; logs and exec on an
// agent's pod; names outside the cluster resolved through Docker's DNS; the server container
// restarted under running pods; an agent container stopped (exit status 0) and replaced on its
// volume; 50 pods created and deleted without zombies; wrong tokens refused; and nothing left
// behind.
func TestDockerCluster(t *testing.T) {
	testutil.NeedsRoot(t, "runs ketch nodes in Docker")
	testutil.LockHost(t)
	iptablesBefore := hostIptables(t)
	e := dockertest.Start(t)
	buildNodeImage(t, e)
	c := &dockerCluster{t: t, e: e, name: "e2e", home: t.TempDir()}
	c.kubeconfig = filepath.Join(c.home, ".kube", "ketch-e2e.yaml")
	c.script("delete", c.name) // left by a killed run
	args := []string{"create", c.name, "--agents", "2", "--image", nodeImage, "--subnet", "10.213.0.0/24", "--timeout", "300"}
	for _, a := range dockerd.Privileges {
		args = append(args, "--docker-arg", a)
	}
	out, err := c.script(args...)
	t.Logf("ketch-docker-cluster.sh create:\n%s", out)
	if err != nil {
		for _, n := range []string{c.server(), c.agent(1), c.agent(2)} {
			t.Logf("%s:\n%s\n%s", n, e.Logs(n), e.NodeLog(n))
		}
		t.Fatalf("create: %v", err)
	}
	deleted := false
	t.Cleanup(func() {
		if !deleted {
			if out, err := c.script("delete", c.name); err != nil {
				t.Errorf("delete: %v\n%s", err, out)
			}
		}
	})
	if c.client, err = kubeclient.New(c.kubeconfig); err != nil {
		t.Fatal(err)
	}
	if ready := c.readyNodes(time.Time{}); len(ready) != 3 || ready[c.server()] == nil || ready[c.agent(1)] == nil || ready[c.agent(2)] == nil {
		t.Fatalf("Ready nodes after create: %v", keys(ready))
	}
	if out, err := c.script("list"); err != nil || !strings.Contains(out, "e2e") || !strings.Contains(out, "https://127.0.0.1:") {
		t.Errorf("list: %v\n%s", err, out)
	}
	// Each adaptation to the container is one line of the node's output: the test containers
	// have /sys and the cgroups read-only, no /dev/kmsg, and Docker's DNS in resolv.conf.
	serverOut := e.Logs(c.server())
	for _, want := range []string{"ketch: running as PID 1", "in a container: remounted read-write what the container had read-only: /sys",
		"in a container: no /dev/kmsg: made it", "in a container: /etc/resolv.conf names Docker's embedded DNS server"} {
		if !strings.Contains(serverOut, want) {
			t.Errorf("the server's output lacks %q:\n%s", want, serverOut)
		}
	}

	t.Run("addons", func(t *testing.T) {
		for _, d := range []string{"coredns", "servicelb", "local-path-provisioner", "metrics-server", "ketch-dashboard"} {
			c.kubectl("-n", "kube-system", "rollout", "status", "deployment/"+d, "--timeout=180s")
		}
	})

	// The workload's image comes from a tarball on this machine, into every node.
	tarball := filepath.Join(t.TempDir(), "echo.tar.gz")
	if err := os.WriteFile(tarball, echoImage(t, "localhost/e2e/echo:oci", true), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := c.script("load", c.name, tarball); err != nil {
		t.Fatalf("load: %v\n%s", err, out)
	}
	c.apply(dockerWorkload)
	var echo []corev1.Pod
	eventually(t, 2*time.Minute, "3 echo pods Ready, one per node", func() error {
		echo = readyPods(c.client, "dk", "app=echo")
		nodes := map[string]bool{}
		for _, p := range echo {
			nodes[p.Spec.NodeName] = true
		}
		if len(echo) != 3 || len(nodes) != 3 {
			return fmt.Errorf("ready echo pods: %v", podPlaces(echo))
		}
		return nil
	})

	t.Run("services", func(t *testing.T) {
		// From a pod on every node, through the Service's name (cluster DNS) and ClusterIP.
		for _, p := range echo {
			eventually(t, time.Minute, "the ClusterIP from "+p.Spec.NodeName, func() error {
				out, err := c.kubectlErr("-n", "dk", "exec", p.Name, "--", "timeout", "5", "wget", "-q", "-O-", "http://echo.dk.svc.cluster.local/")
				if err != nil || !strings.Contains(out, "echo-") {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})
		}
		// From this machine: a NodePort on each node's address, and the LoadBalancer's address.
		for _, n := range []string{c.server(), c.agent(1), c.agent(2)} {
			ip := strings.TrimSpace(e.Must(t, "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", n))
			eventually(t, time.Minute, "the NodePort on "+n, func() error {
				body, err := httpGet("http://" + ip + ":30082/")
				if err != nil || !strings.Contains(body, "echo-") {
					return fmt.Errorf("%v: %s", err, body)
				}
				return nil
			})
		}
		eventually(t, 2*time.Minute, "the LoadBalancer", func() error {
			svc, err := c.client.CoreV1().Services("dk").Get(context.Background(), "echo-lb", metav1.GetOptions{})
			if err != nil || len(svc.Status.LoadBalancer.Ingress) == 0 {
				return fmt.Errorf("no ingress address yet: %v", err)
			}
			body, err := httpGet("http://" + svc.Status.LoadBalancer.Ingress[0].IP + ":8082/")
			if err != nil || !strings.Contains(body, "echo-") {
				return fmt.Errorf("%v: %s", err, body)
			}
			return nil
		})
	})

	t.Run("logs and exec on an agent's pod", func(t *testing.T) {
		var p *corev1.Pod
		for i := range echo {
			if echo[i].Spec.NodeName == c.agent(2) {
				p = &echo[i]
			}
		}
		if p == nil {
			t.Fatalf("no echo pod on %s: %v", c.agent(2), podPlaces(echo))
		}
		if out := c.kubectl("-n", "dk", "exec", p.Name, "--", "hostname"); strings.TrimSpace(out) != p.Name {
			t.Errorf("exec hostname: %q, want %q", out, p.Name)
		}
		eventually(t, 30*time.Second, "the pod's logs", func() error {
			out, err := c.kubectlErr("-n", "dk", "logs", p.Name)
			if err != nil || strings.TrimSpace(out) == "" {
				return fmt.Errorf("%v: %q", err, out)
			}
			return nil
		})
	})

	t.Run("names outside the cluster", func(t *testing.T) {
		// Docker's DNS knows the node containers by name; CoreDNS forwards to it. wget says where
		// it connects once the name resolved (the plain HTTP request to the API's HTTPS port
		// then fails, which does not matter here).
		ip := strings.TrimSpace(e.Must(t, "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", c.server()))
		want := fmt.Sprintf("Connecting to %s:6443 (%s:6443)", c.server(), ip)
		eventually(t, time.Minute, "resolving "+c.server()+" from a pod", func() error {
			out, err := c.kubectlErr("-n", "dk", "exec", echo[0].Name, "--", "sh", "-c", "timeout 5 wget -O- http://"+c.server()+":6443/ 2>&1; true")
			if err != nil || !strings.Contains(out, want) {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
	})

	t.Run("server container restarted", func(t *testing.T) {
		before := agentPods(c, echo)
		restarted := time.Now()
		e.Must(t, "restart", c.server())
		eventually(t, 3*time.Minute, "the server's node Ready again", func() error {
			if c.readyNodes(restarted)[c.server()] == nil {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		for name, p := range before {
			now, err := c.client.CoreV1().Pods("dk").Get(context.Background(), name, metav1.GetOptions{})
			if err != nil {
				t.Errorf("pod %s on %s: %v", name, p.Spec.NodeName, err)
				continue
			}
			if now.UID != p.UID || now.Status.ContainerStatuses[0].RestartCount != 0 || now.Status.ContainerStatuses[0].ContainerID != p.Status.ContainerStatuses[0].ContainerID {
				t.Errorf("pod %s on %s changed across the server's restart: uid %s -> %s, container %s -> %s, restarts %d",
					name, p.Spec.NodeName, p.UID, now.UID, p.Status.ContainerStatuses[0].ContainerID, now.Status.ContainerStatuses[0].ContainerID, now.Status.ContainerStatuses[0].RestartCount)
			}
		}
	})

	t.Run("agent container replaced on its volume", func(t *testing.T) {
		agent := c.agent(1)
		node, err := c.client.CoreV1().Nodes().Get(context.Background(), agent, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var env []string
		if err := json.Unmarshal([]byte(e.Must(t, "inspect", "--format", "{{json .Config.Env}}", agent)), &env); err != nil {
			t.Fatal(err)
		}
		// docker stop: SIGTERM to PID 1, forwarded to ketch, which stops as on a host, with
		// exit status 0 well within docker's 10 s before SIGKILL.
		e.Must(t, "stop", agent)
		if code := strings.TrimSpace(e.Must(t, "inspect", "--format", "{{.State.ExitCode}}", agent)); code != "0" {
			t.Errorf("docker stop: %s exited %s, want 0:\n%s", agent, code, e.Logs(agent))
		}
		if logs := e.Logs(agent); !strings.Contains(logs, "ketch: stopping") {
			t.Errorf("docker stop: %s did not say it was stopping:\n%s", agent, logs)
		}
		e.Must(t, "rm", "--force", agent)
		replaced := time.Now()
		args := []string{"run", "--detach", "--name", agent, "--hostname", agent, "--label", "io.ketch.cluster=" + c.name,
			"--network", "ketch-" + c.name, "--tmpfs", "/run", "--tmpfs", "/var/run", "--volume", agent + ":/var/lib/ketch"}
		for _, kv := range env {
			if strings.HasPrefix(kv, "KETCH_") {
				args = append(args, "--env", kv)
			}
		}
		args = append(append(args, dockerd.Privileges...), nodeImage, "agent")
		e.Must(t, args...)
		eventually(t, 3*time.Minute, "the replaced agent Ready again", func() error {
			if c.readyNodes(replaced)[agent] == nil {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		if now, err := c.client.CoreV1().Nodes().Get(context.Background(), agent, metav1.GetOptions{}); err != nil || now.UID != node.UID {
			t.Errorf("the replaced agent is not the same node: uid %s, was %s (%v)", now.UID, node.UID, err)
		}
	})

	t.Run("50 pods leave no zombies", func(t *testing.T) {
		c.apply(echoDeployment("burst", 50, false)) // the scheduler spreads them
		eventually(t, 5*time.Minute, "50 burst pods Running", func() error {
			if n := len(readyPods(c.client, "dk", "app=burst")); n != 50 {
				return fmt.Errorf("%d Ready", n)
			}
			return nil
		})
		c.kubectl("-n", "dk", "delete", "deployment", "burst", "--wait=true")
		eventually(t, 3*time.Minute, "the burst pods gone", func() error {
			list, err := c.client.CoreV1().Pods("dk").List(context.Background(), metav1.ListOptions{LabelSelector: "app=burst"})
			if err != nil || len(list.Items) != 0 {
				return fmt.Errorf("%d left (%v)", len(list.Items), err)
			}
			return nil
		})
		for _, n := range []string{c.server(), c.agent(1), c.agent(2)} {
			pid := c.containerPID(n)
			// A process that just ended is a zombie until PID 1 has reaped it: allow a moment.
			eventually(t, 15*time.Second, "no zombies in "+n, func() error {
				z, err := zombies(pid)
				if err != nil || len(z) > 0 {
					return fmt.Errorf("%v: %s", err, strings.Join(z, "; "))
				}
				return nil
			})
		}
	})

	t.Run("wrong tokens", func(t *testing.T) {
		for name, tc := range map[string]struct{ token, want string }{
			"no token":        {"", "ketch agent needs a join token"},
			"another secret":  {"not-the-cluster-secret", "the server's CA does not match the token"},
			"another cluster": {"K10" + strings.Repeat("ab", 32) + "::server:not-the-cluster-secret", "the server's CA does not match the token"},
			"a damaged token": {"K10abc::server:x", "the join token is damaged"},
		} {
			args := []string{"run", "--name", "ketch-e2e-bad-agent", "--network", "ketch-" + c.name, "--tmpfs", "/run", "--tmpfs", "/var/run",
				"--env", "KETCH_URL=https://" + c.server() + ":6443"}
			if tc.token != "" {
				args = append(args, "--env", "KETCH_TOKEN="+tc.token)
			}
			args = append(append(args, dockerd.Privileges...), nodeImage, "agent")
			out, err := e.Run(args...)
			logs := e.Logs("ketch-e2e-bad-agent")
			e.Run("rm", "--force", "--volumes", "ketch-e2e-bad-agent")
			if err == nil || !strings.Contains(logs, tc.want) || strings.Contains(logs, "goroutine ") {
				t.Errorf("%s: docker run: %v %s\nlogs:\n%s\nwant a failure saying %q", name, err, out, logs, tc.want)
			}
		}
	})

	if out, err := c.script("delete", c.name); err != nil {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	deleted = true
	for what, args := range map[string][]string{
		"containers": {"ps", "-a", "-q", "--filter", "label=io.ketch.cluster"},
		"networks":   {"network", "ls", "-q", "--filter", "label=io.ketch.cluster"},
		"volumes":    {"volume", "ls", "-q", "--filter", "label=io.ketch.cluster"},
	} {
		if out := strings.TrimSpace(e.Must(t, args...)); out != "" {
			t.Errorf("%s left after delete: %s", what, out)
		}
	}
	if _, err := os.Stat(c.kubeconfig); !os.IsNotExist(err) {
		t.Errorf("the kubeconfig is still there after delete: %v", err)
	}
	// The nodes' rules live in their containers' network namespaces; the engine makes none.
	if after := hostIptables(t); after != iptablesBefore {
		t.Errorf("the machine's iptables rules changed:\nbefore:\n%s\nafter:\n%s", iptablesBefore, after)
	}
}

// TestDockerRefusals: the node image in a container that lacks what a node needs stops at once
// with a message that names what is missing, not a component's stack trace.
func TestDockerRefusals(t *testing.T) {
	testutil.NeedsRoot(t, "runs containers in Docker")
	e := dockertest.Start(t)
	buildNodeImage(t, e)
	// A network, as docker's default bridge gives a container (the test engine has none).
	e.Network(t, "kt-refusals", "10.214.0.0/24")
	for _, role := range [][]string{{"server"}, {"agent", "--server", "https://192.0.2.1:6443", "--token", "some-cluster-secret"}} {
		const name = "ketch-e2e-unprivileged"
		// No --privileged, nothing: docker run's defaults.
		out, err := e.Run(append([]string{"run", "--name", name, "--network", "kt-refusals", "--tmpfs", "/run", nodeImage}, role...)...)
		logs := e.Logs(name)
		e.Run("rm", "--force", "--volumes", name)
		if err == nil {
			t.Errorf("%s ran without privileges: %s", role[0], out)
			continue
		}
		for _, want := range []string{"in a container without the privileges a node needs", "CAP_SYS_ADMIN", "CAP_NET_ADMIN", "/sys writable", "/proc/sys writable", "--privileged"} {
			if !strings.Contains(logs, want) {
				t.Errorf("%s without privileges: the output does not say %q:\n%s", role[0], want, logs)
			}
		}
		if strings.Contains(logs, "goroutine ") {
			t.Errorf("%s without privileges: a stack trace:\n%s", role[0], logs)
		}
	}
}

// agentPods are those of pods that run on an agent, by name, as the API has them now.
func agentPods(c *dockerCluster, pods []corev1.Pod) map[string]corev1.Pod {
	out := map[string]corev1.Pod{}
	for _, p := range pods {
		if p.Spec.NodeName == c.server() {
			continue
		}
		now, err := c.client.CoreV1().Pods(p.Namespace).Get(context.Background(), p.Name, metav1.GetOptions{})
		if err != nil {
			c.t.Fatal(err)
		}
		out[p.Name] = *now
	}
	if len(out) == 0 {
		c.t.Fatal("no pod on an agent")
	}
	return out
}

// hostIptables is this machine's iptables rules without their counters.
func hostIptables(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, cmd := range []string{"iptables-save", "ip6tables-save"} {
		out, err := exec.Command(cmd).Output()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		var lines []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "#") {
				continue
			}
			if strings.HasPrefix(l, ":") {
				l = l[:strings.LastIndexByte(l, ' ')] // the chain's counters
			}
			lines = append(lines, l)
		}
		sort.Strings(lines)
		b.WriteString(strings.Join(lines, "\n"))
	}
	return b.String()
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// composeOverride stands in for privileged: true, which this machine cannot grant
// (dockerd.Privileges); the engine gives every container its own cgroup namespace.
const composeOverride = `version: "2.4"
x-privileges: &privileges
  privileged: false
  cap_add: [ALL]
  cap_drop: [SYS_RESOURCE]
  # Not systempaths=unconfined, which compose cannot pass: ketch remounts /proc/sys itself.
  security_opt: [seccomp=unconfined, apparmor=unconfined]
  device_cgroup_rules: ['a *:* rwm']
services:
  server: *privileges
  agent-1: *privileges
  agent-2: *privileges
`

// TestDockerCompose brings up docs/docker-compose.yml with Debian's docker-compose: a server and
// two agents sharing one secret, all Ready, reached from this machine through the published
// port; then takes it down with its volumes.
func TestDockerCompose(t *testing.T) {
	testutil.NeedsRoot(t, "runs ketch nodes in Docker")
	testutil.LockHost(t)
	compose, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Fatalf("docker-compose is missing: apt-get install docker-compose (scripts/install-deps.sh does)")
	}
	e := dockertest.Start(t)
	buildNodeImage(t, e)
	dir := t.TempDir()
	override := filepath.Join(dir, "privileges.yml")
	if err := os.WriteFile(override, []byte(composeOverride), 0o644); err != nil {
		t.Fatal(err)
	}
	port := strings.TrimPrefix(testutil.FreeLoopbackAddr(t), "127.0.0.1:")
	const project = "ketche2e"
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, compose, append([]string{"--project-name", project,
			"--file", filepath.Join(testutil.RepoRoot(), "docs", "docker-compose.yml"), "--file", override}, args...)...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.Host(), "KETCH_IMAGE="+nodeImage, "KETCH_API_PORT="+port,
			"KETCH_TOKEN=compose-test-secret-0123456789")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	down := func() {
		if out, err := run("down", "--volumes", "--timeout", "30"); err != nil {
			t.Errorf("docker-compose down: %v\n%s", err, out)
		}
	}
	run("down", "--volumes") // left by a killed run
	if out, err := run("up", "--detach"); err != nil {
		t.Fatalf("docker-compose up: %v\n%s", err, out)
	}
	upped := true
	t.Cleanup(func() {
		if upped {
			if t.Failed() {
				out, _ := run("logs", "--tail", "30")
				t.Logf("docker-compose logs:\n%s", out)
			}
			down()
		}
	})
	kubeconfig := filepath.Join(dir, "kubeconfig")
	eventually(t, 2*time.Minute, "the kubeconfig", func() error {
		out, err := run("exec", "-T", "server", "ketch", "kubeconfig", "--server", "https://127.0.0.1:"+port)
		if err != nil || !strings.Contains(out, "client-certificate-data") {
			return fmt.Errorf("%v: %s", err, out)
		}
		return os.WriteFile(kubeconfig, []byte(out), 0o600)
	})
	c := &dockerCluster{t: t, e: e, kubeconfig: kubeconfig}
	if c.client, err = kubeclient.New(kubeconfig); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Minute, "3 nodes Ready", func() error {
		if ready := c.readyNodes(time.Time{}); len(ready) != 3 || ready["server"] == nil || ready["agent-1"] == nil || ready["agent-2"] == nil {
			return fmt.Errorf("Ready: %v", keys(ready))
		}
		return nil
	})
	upped = false
	down()
	for what, args := range map[string][]string{
		"containers": {"ps", "-a", "-q", "--filter", "label=com.docker.compose.project=" + project},
		"networks":   {"network", "ls", "-q", "--filter", "label=com.docker.compose.project=" + project},
		"volumes":    {"volume", "ls", "-q", "--filter", "label=com.docker.compose.project=" + project},
	} {
		if out := strings.TrimSpace(e.Must(t, args...)); out != "" {
			t.Errorf("%s left after docker-compose down: %s", what, out)
		}
	}
}
