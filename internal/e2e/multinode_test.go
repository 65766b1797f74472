package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/internal/testutil"
)

const mnNS = "mn"

// spreadWorkload is three echo replicas, one per node, behind a ClusterIP and a NodePort
// Service. Their short tolerations let the test see them move off a stopped node quickly;
// nodeTaintsPolicy Honor lets the spread ignore that node once it is tainted.
const spreadWorkload = `
apiVersion: v1
kind: Namespace
metadata: {name: mn}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: mn}
spec:
  replicas: 3
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      terminationGracePeriodSeconds: 1
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, nodeTaintsPolicy: Honor, labelSelector: {matchLabels: {app: echo}}}
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      containers:
      - name: echo
        image: localhost/e2e/echo:oci
        imagePullPolicy: Never
        readinessProbe:
          httpGet: {path: /, port: 8080}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: mn}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo-nodeport, namespace: mn}
spec:
  type: NodePort
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080, nodePort: 30081}]
`

// TestMultiNode runs a server and two agents, each a separate host in its own network
// namespace on this machine (scripts/ketch-cluster.sh), with each flannel backend.
func TestMultiNode(t *testing.T) {
	t.Run("vxlan", func(t *testing.T) {
		c := newMultiNode(t, "kv", "10.99.71", "--flannel-backend", "vxlan")
		c.checkNodes()
		if out := c.nodeExec(c.node(2), "ip", "-d", "link", "show", "flannel.1"); !strings.Contains(out, "vxlan id 1") {
			t.Errorf("no vxlan device flannel.1 on %s:\n%s", c.node(2), out)
		}
		c.deploy()
		c.checkTraffic()
		c.checkLoadBalancer()
		c.checkMasquerade()
		c.checkLogsAndExec()
		c.checkServerRestart()
		c.checkAgentLossAndRejoin()
	})
	t.Run("host-gw", func(t *testing.T) {
		c := newMultiNode(t, "kh", "10.99.72", "--flannel-backend", "host-gw")
		c.checkNodes()
		// host-gw routes each node's pod subnet via that node's IP, with no tunnel.
		routes := c.nodeExec(c.node(1), "ip", "route")
		for i := 2; i <= 3; i++ {
			n := c.getNode(c.node(i))
			if want := n.Spec.PodCIDR + " via " + c.nodeIP(i); !strings.Contains(routes, want) {
				t.Errorf("%s's routes lack %q:\n%s", c.node(1), want, routes)
			}
		}
		if out, err := c.nodeExecErr(c.node(1), "ip", "link", "show", "flannel.1"); err == nil {
			t.Errorf("host-gw node has a vxlan device:\n%s", out)
		}
		c.deploy()
		c.checkTraffic()
	})
}

// multiNode is a cluster made by scripts/ketch-cluster.sh.
type multiNode struct {
	t                 *testing.T
	cl                *harness.Cluster
	bin               string
	dir, name, subnet string
	kubeconfig        string // reaches the server from this machine's network namespace
	client            kubernetes.Interface
	total             int
}

func newMultiNode(t *testing.T, name, subnet string, serverArgs ...string) *multiNode {
	t.Helper()
	return newCluster(t, &harness.Cluster{Name: name, Subnet: subnet, Nodes: 3}, serverArgs...)
}

// newCluster brings up cl (its Name, Subnet, Nodes and, for HA, Servers and Etcd set) with
// serverArgs for every server, and loads the echo image on every node.
func newCluster(t *testing.T, cl *harness.Cluster, serverArgs ...string) *multiNode {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the nodes run containers in network namespaces")
	}
	testutil.LockHost(t)
	// Short: the kubelet's and containerd's socket paths under it are length-limited.
	dir, err := os.MkdirTemp("/tmp", "kmn-")
	if err != nil {
		t.Fatal(err)
	}
	cl.Script, cl.Bin, cl.Dir = filepath.Join(testutil.RepoRoot(), "scripts", "ketch-cluster.sh"), testutil.KetchBinary(t), dir
	c := &multiNode{
		t: t, cl: cl, bin: cl.Bin, dir: dir, name: cl.Name, subnet: cl.Subnet, kubeconfig: cl.Kubeconfig(), total: cl.Nodes,
	}
	t.Cleanup(c.down)
	// Short enough for the test to see a stopped agent's node go NotReady quickly.
	if err := cl.Up(context.Background(), append([]string{"--kube-controller-manager-arg", "node-monitor-grace-period=20s"}, serverArgs...)...); err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if c.client, err = kubernetes.NewForConfig(rc); err != nil {
		t.Fatal(err)
	}
	c.importEchoImage()
	return c
}

func (c *multiNode) node(i int) string    { return c.cl.Node(i) }
func (c *multiNode) nodeIP(i int) string  { return c.cl.NodeIP(i) }
func (c *multiNode) dataDir(i int) string { return c.cl.DataDir(i) }

// must runs the cluster script and fails the test if it fails.
func (c *multiNode) must(args ...string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := c.cl.Run(ctx, nil, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// nodeExecErr runs a command on a node: in its network namespace.
func (c *multiNode) nodeExecErr(node string, cmd ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return c.cl.Exec(ctx, node, cmd...)
}

func (c *multiNode) nodeExec(node string, cmd ...string) string {
	c.t.Helper()
	out, err := c.nodeExecErr(node, cmd...)
	if err != nil {
		c.t.Fatalf("on %s: %s: %v", node, strings.Join(cmd, " "), err)
	}
	return out
}

// ketch runs ketch subcommands with the cluster's kubeconfig.
func (c *multiNode) ketch() harness.Ketch { return harness.Ketch{Bin: c.bin, Kubeconfig: c.kubeconfig} }

func (c *multiNode) kubectl(args ...string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := c.ketch().Run(ctx, "", append([]string{"kubectl"}, args...)...)
	if err != nil {
		c.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// importEchoImage loads the test image into every node's containerd, as a user would on each
// machine.
func (c *multiNode) importEchoImage() {
	tarball := filepath.Join(c.t.TempDir(), "echo.tar.gz")
	if err := os.WriteFile(tarball, echoImage(c.t, "localhost/e2e/echo:oci", true), 0o600); err != nil {
		c.t.Fatal(err)
	}
	for i := 1; i <= c.total; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err := c.ketch().ImportImage(ctx, c.cl.Socket(i), tarball)
		cancel()
		if err != nil {
			c.t.Fatalf("importing the image on %s: %v", c.node(i), err)
		}
	}
}

func (c *multiNode) getNode(name string) *corev1.Node {
	c.t.Helper()
	n, err := c.client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

// checkNodes: every node Ready, with the name, IP and pod CIDR it was given.
func (c *multiNode) checkNodes() {
	t := c.t
	list, err := c.client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != c.total {
		t.Fatalf("%d nodes, want %d", len(list.Items), c.total)
	}
	cidrs := map[string]bool{}
	for i := 1; i <= c.total; i++ {
		n := c.getNode(c.node(i))
		if !nodeReady(n) {
			t.Errorf("node %s is not Ready", n.Name)
		}
		if got := internalIP(n); got != c.nodeIP(i) {
			t.Errorf("node %s has InternalIP %s, want %s", n.Name, got, c.nodeIP(i))
		}
		_, cidr, err := net.ParseCIDR(n.Spec.PodCIDR)
		if err != nil || !strings.HasPrefix(cidr.String(), "10.42.") || cidrs[cidr.String()] {
			t.Errorf("node %s has pod CIDR %q: want its own /24 of 10.42.0.0/16", n.Name, n.Spec.PodCIDR)
		}
		cidrs[n.Spec.PodCIDR] = true
	}
	if _, ok := c.getNode(c.node(1)).Labels["node-role.kubernetes.io/control-plane"]; !ok {
		t.Errorf("the server's node is not labelled control-plane")
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (c *multiNode) kubectlApply(manifest string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := c.ketch().Run(ctx, manifest, "kubectl", "apply", "-f", "-"); err != nil {
		c.t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

func (c *multiNode) deploy() {
	c.kubectlApply(spreadWorkload)
	eventually(c.t, 2*time.Minute, "3 echo pods Ready, one per node", func() error {
		pods := c.echoPods()
		nodes := map[string]bool{}
		for _, p := range pods {
			nodes[p.Spec.NodeName] = true
		}
		if len(pods) != 3 || len(nodes) != 3 {
			return fmt.Errorf("ready echo pods: %v", podPlaces(pods))
		}
		return nil
	})
}

// echoPods are the Ready, not terminating echo pods, by name.
func (c *multiNode) echoPods() []corev1.Pod { return readyPods(c.client, mnNS, "app=echo") }

func podPlaces(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name+"@"+p.Spec.NodeName+"/"+p.Status.PodIP)
	}
	return out
}

// countAnswers counts the echo server's answers by pod.
func countAnswers(out string) map[string]int {
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "hostname="); ok {
			seen[name]++
		}
	}
	return seen
}

// loop is a shell loop of n requests to url with wget (a command, for busybox's applet).
func loop(n int, wget, url string) string {
	return fmt.Sprintf("for i in $(seq 1 %d); do %s -q -O - %s; done", n, wget, url)
}

// checkTraffic: pod to pod across nodes (keeping source IPs), ClusterIP from every node and
// from a pod on every node, NodePort on every node's IP.
func (c *multiNode) checkTraffic() {
	t := c.t
	pods := c.echoPods()
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
	}
	for _, from := range pods {
		var script []string
		for _, to := range pods {
			script = append(script, "wget -q -O - http://"+to.Status.PodIP+":8080/")
		}
		out := c.kubectl("-n", mnNS, "exec", from.Name, "--", "sh", "-c", strings.Join(script, "; "))
		if err := spread(countAnswers(out), names); err != nil {
			t.Errorf("pod %s on %s to every pod by IP: %v", from.Name, from.Spec.NodeName, err)
		}
	}
	// Across nodes, flannel does not masquerade: each pod saw the others' own IPs.
	for _, to := range pods {
		logs := c.kubectl("-n", mnNS, "logs", to.Name)
		for _, from := range pods {
			if from.Name != to.Name && !strings.Contains(logs, "from "+from.Status.PodIP+":") {
				t.Errorf("pod %s did not see pod %s's IP %s as the source:\n%s", to.Name, from.Name, from.Status.PodIP, logs)
			}
		}
	}

	svc, err := c.client.CoreV1().Services(mnNS).Get(context.Background(), "echo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clusterIP := "http://" + svc.Spec.ClusterIP + "/"
	for _, from := range pods {
		out := c.kubectl("-n", mnNS, "exec", from.Name, "--", "sh", "-c", loop(30, "wget", clusterIP))
		if err := spread(countAnswers(out), names); err != nil {
			t.Errorf("ClusterIP from pod %s on %s: %v", from.Name, from.Spec.NodeName, err)
		}
	}
	for i := 1; i <= c.total; i++ {
		out := c.nodeExec(c.node(i), "sh", "-c", loop(30, "busybox wget", clusterIP))
		if err := spread(countAnswers(out), names); err != nil {
			t.Errorf("ClusterIP from node %s: %v", c.node(i), err)
		}
	}
	for i := 1; i <= c.total; i++ {
		url := "http://" + c.nodeIP(i) + ":30081/"
		seen := map[string]int{}
		for range 30 {
			body, err := httpGet(url)
			if err != nil {
				t.Errorf("NodePort on %s: %v", c.node(i), err)
				break
			}
			seen[strings.TrimPrefix(strings.TrimSpace(body), "hostname=")]++
		}
		if err := spread(seen, names); err != nil {
			t.Errorf("NodePort on %s: %v", c.node(i), err)
		}
	}
}

// checkLoadBalancer: a LoadBalancer Service gets every node's IP from the bundled service load
// balancer and answers there from every replica.
func (c *multiNode) checkLoadBalancer() {
	t := c.t
	c.kubectlApply(`
apiVersion: v1
kind: Service
metadata: {name: echo-lb, namespace: ` + mnNS + `}
spec:
  type: LoadBalancer
  selector: {app: echo}
  ports: [{port: 8090, targetPort: 8080}]
`)
	var want []string
	for i := 1; i <= c.total; i++ {
		want = append(want, c.nodeIP(i))
	}
	sort.Strings(want)
	eventually(t, 2*time.Minute, "echo-lb's ingress lists every node", func() error {
		svc, err := c.client.CoreV1().Services(mnNS).Get(context.Background(), "echo-lb", metav1.GetOptions{})
		if err != nil {
			return err
		}
		var got []string
		for _, in := range svc.Status.LoadBalancer.Ingress {
			got = append(got, in.IP)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("ingress %v, want %v", got, want)
		}
		return nil
	})
	var names []string
	for _, p := range c.echoPods() {
		names = append(names, p.Name)
	}
	for _, ip := range want {
		url := "http://" + ip + ":8090/"
		eventually(t, time.Minute, "echo-lb answers from every replica at "+url, func() error {
			seen := map[string]int{}
			for range 30 {
				body, err := httpGet(url)
				if err != nil {
					return err
				}
				seen[strings.TrimPrefix(strings.TrimSpace(body), "hostname=")]++
			}
			return spread(seen, names)
		})
	}

	// Node labels choose the serving nodes: once one node is marked, only it serves.
	c.kubectl("label", "node", c.node(2), "svccontroller.ketch.io/enablelb=true")
	eventually(t, time.Minute, "echo-lb's ingress only on the labelled node", func() error {
		svc, err := c.client.CoreV1().Services(mnNS).Get(context.Background(), "echo-lb", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if in := svc.Status.LoadBalancer.Ingress; len(in) != 1 || in[0].IP != c.nodeIP(2) {
			return fmt.Errorf("ingress %v, want only %s", in, c.nodeIP(2))
		}
		return nil
	})
	c.kubectl("label", "node", c.node(2), "svccontroller.ketch.io/enablelb-")
	c.kubectl("-n", mnNS, "delete", "service", "echo-lb")
}

// checkMasquerade: a pod's traffic to a host outside the cluster leaves with its node's IP.
func (c *multiNode) checkMasquerade() {
	t := c.t
	l, err := net.Listen("tcp", c.subnet+".1:0") // the cluster bridge's address on this machine
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sources []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sources = append(sources, r.RemoteAddr)
		mu.Unlock()
		fmt.Fprintln(w, "outside")
	})}
	go srv.Serve(l)
	defer srv.Close()
	for _, p := range c.echoPods() {
		if p.Spec.NodeName != c.node(2) {
			continue
		}
		out := c.kubectl("-n", mnNS, "exec", p.Name, "--", "wget", "-q", "-O", "-", "http://"+l.Addr().String()+"/")
		if strings.TrimSpace(out) != "outside" {
			t.Errorf("pod %s to outside: %q", p.Name, out)
		}
		mu.Lock()
		if len(sources) != 1 || !strings.HasPrefix(sources[0], c.nodeIP(2)+":") {
			t.Errorf("pod %s on %s reached the outside from %v, want its node's IP %s", p.Name, c.node(2), sources, c.nodeIP(2))
		}
		mu.Unlock()
		return
	}
	t.Errorf("no echo pod on %s", c.node(2))
}

// checkLogsAndExec: kube-apiserver reaches an agent's kubelet.
func (c *multiNode) checkLogsAndExec() {
	for _, p := range c.echoPods() {
		if p.Spec.NodeName != c.node(3) {
			continue
		}
		if logs := c.kubectl("-n", mnNS, "logs", p.Name); !strings.Contains(logs, "listening on :8080") {
			c.t.Errorf("kubectl logs %s on %s:\n%s", p.Name, c.node(3), logs)
		}
		if out := c.kubectl("-n", mnNS, "exec", p.Name, "--", "hostname"); strings.TrimSpace(out) != p.Name {
			c.t.Errorf("kubectl exec %s hostname: %q", p.Name, out)
		}
		return
	}
	c.t.Errorf("no echo pod on %s", c.node(3))
}

// podStates is every echo pod's UID, node, IP and containers' restart counts.
func (c *multiNode) podStates() map[string]string {
	states := map[string]string{}
	for _, p := range c.echoPods() {
		var restarts []string
		for _, s := range p.Status.ContainerStatuses {
			restarts = append(restarts, fmt.Sprintf("%s:%d", s.ContainerID, s.RestartCount))
		}
		states[p.Name] = fmt.Sprintf("%s %s %s %v", p.UID, p.Spec.NodeName, p.Status.PodIP, restarts)
	}
	return states
}

// checkServerRestart: the agents stay Ready through a server restart and no pod restarts.
func (c *multiNode) checkServerRestart() {
	t := c.t
	before := c.podStates()
	c.must("stop", "--dir", c.dir, c.node(1))
	restarted := time.Now().Truncate(time.Second)
	c.must("start", "--dir", c.dir, c.node(1))
	eventually(t, 2*time.Minute, "the server's node Ready again", func() error {
		n, err := c.client.CoreV1().Nodes().Get(context.Background(), c.node(1), metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue && !cond.LastHeartbeatTime.Before(&metav1.Time{Time: restarted}) {
				return nil
			}
		}
		return fmt.Errorf("not Ready since the restart")
	})
	// The agents have reconnected once they renew their node leases again through their load
	// balancers (the lease is the kubelet's heartbeat; node status only reports changes).
	eventually(t, time.Minute, "agents heartbeating after the server restart", func() error {
		for i := 2; i <= c.total; i++ {
			lease, err := c.client.CoordinationV1().Leases("kube-node-lease").Get(context.Background(), c.node(i), metav1.GetOptions{})
			if err != nil {
				return err
			}
			if lease.Spec.RenewTime == nil || lease.Spec.RenewTime.Time.Before(restarted) {
				return fmt.Errorf("%s's lease last renewed %v", c.node(i), lease.Spec.RenewTime)
			}
			if !nodeReady(c.getNode(c.node(i))) {
				return fmt.Errorf("%s is not Ready", c.node(i))
			}
		}
		return nil
	})
	// The agents' load balancers learned the server from the kubernetes Service's endpoints.
	for i := 2; i <= c.total; i++ {
		log, _ := os.ReadFile(filepath.Join(c.dataDir(i), "logs", "ketch.log"))
		if !strings.Contains(string(log), `"Load balancer servers updated"`) || !strings.Contains(string(log), c.nodeIP(1)+":6443") {
			t.Errorf("%s's load balancer never learned the server from the endpoints", c.node(i))
		}
	}
	if after := c.podStates(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("pods changed across the server restart:\nbefore %v\nafter  %v", before, after)
	}
}

// checkAgentLossAndRejoin stops an agent: its node goes NotReady and its pod moves. While it is
// down, bad joins are tried from its machine and refused; then it rejoins as itself.
func (c *multiNode) checkAgentLossAndRejoin() {
	t := c.t
	lost := c.node(3)
	uid := c.getNode(lost).UID
	c.must("stop", "--dir", c.dir, lost)
	eventually(t, 2*time.Minute, lost+" NotReady", func() error {
		if nodeReady(c.getNode(lost)) {
			return fmt.Errorf("still Ready")
		}
		return nil
	})
	eventually(t, 2*time.Minute, "3 echo pods Ready on the other nodes", func() error {
		pods := c.echoPods()
		for _, p := range pods {
			if p.Spec.NodeName == lost {
				return fmt.Errorf("pod %s still on %s: %v", p.Name, lost, podPlaces(pods))
			}
		}
		if len(pods) != 3 {
			return fmt.Errorf("ready echo pods: %v", podPlaces(pods))
		}
		return nil
	})

	c.checkRefusedJoins(3)

	c.must("start", "--dir", c.dir, lost)
	eventually(t, 2*time.Minute, lost+" Ready again", func() error {
		if !nodeReady(c.getNode(lost)) {
			return fmt.Errorf("not Ready")
		}
		return nil
	})
	if got := c.getNode(lost).UID; got != uid {
		t.Errorf("%s rejoined as a new Node object (UID %s, was %s)", lost, got, uid)
	}
}

// checkRefusedJoins tries joins that must fail, from node i's machine while its own agent is
// stopped: a token for another CA, a wrong secret, an expired and a deleted agent token, and
// another machine taking an existing node's name. None may change the cluster.
func (c *multiNode) checkRefusedJoins(i int) {
	t := c.t
	serverToken, err := os.ReadFile(filepath.Join(c.dataDir(1), "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	hash, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(string(serverToken)), "K10"), "::")
	other := sha256.Sum256([]byte("another cluster's CA"))
	nodesBefore := c.nodeUIDs()
	passwordBefore := c.passwordSecretVersion(c.node(2))

	createToken := func(args ...string) string {
		out := c.nodeExec(c.node(1), append([]string{c.bin, "token", "create", "--data-dir", c.dataDir(1)}, args...)...)
		return strings.TrimSpace(out)
	}
	expired := createToken("--ttl", "1s", "--description", "expires at once")
	deleted := createToken("--description", "deleted before use")
	valid := createToken("--description", "e2e")
	deletedID := strings.SplitN(strings.SplitN(deleted, "::", 2)[1], ".", 2)[0]
	if list := c.nodeExec(c.node(1), c.bin, "token", "list", "--data-dir", c.dataDir(1)); !strings.Contains(list, deletedID) || !strings.Contains(list, "deleted before use") {
		t.Errorf("token list lacks %s:\n%s", deletedID, list)
	}
	c.nodeExec(c.node(1), c.bin, "token", "delete", "--data-dir", c.dataDir(1), deletedID)
	if list := c.nodeExec(c.node(1), c.bin, "token", "list", "--data-dir", c.dataDir(1)); strings.Contains(list, deletedID) {
		t.Errorf("token list still has deleted %s:\n%s", deletedID, list)
	}
	time.Sleep(1500 * time.Millisecond) // past the expiry of the 1 s token

	for n, tc := range []struct {
		what, token, nodeName, want string
	}{
		{"another cluster's CA hash", "K10" + hex.EncodeToString(other[:]) + "::server:" + strings.SplitN(string(serverToken), "::server:", 2)[1], "intruder", "the server's CA does not match the token"},
		{"a wrong server secret", "K10" + hash + "::server:not-the-right-secret", "intruder", "the server refused the token"},
		{"an expired agent token", expired, "intruder", "the server refused the token"},
		{"a deleted agent token", deleted, "intruder", "the server refused the token"},
		{"an existing node's name", valid, c.node(2), "node name " + c.node(2) + " belongs to another machine"},
	} {
		dataDir := filepath.Join(c.dir, fmt.Sprintf("intruder-%d", n))
		out, err := c.nodeExecErr(c.node(i), c.bin, "agent", "--server", "https://"+c.nodeIP(1)+":6443", "--token", strings.TrimSpace(tc.token),
			"--data-dir", dataDir, "--run-dir", fmt.Sprintf("/run/ketch-%s-x%d", c.name, n), "--node-name", tc.nodeName, "--node-ip", c.nodeIP(i))
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("join with %s: err %v, want a refusal saying %q:\n%s", tc.what, err, tc.want, out)
		}
		if _, err := os.Stat(filepath.Join(dataDir, "agent", "tls", "client-kubelet.crt")); err == nil {
			t.Errorf("join with %s got a kubelet certificate", tc.what)
		}
		os.RemoveAll(fmt.Sprintf("/run/ketch-%s-x%d", c.name, n))
	}
	if after := c.nodeUIDs(); after != nodesBefore {
		t.Errorf("refused joins changed the nodes: %s, was %s", after, nodesBefore)
	}
	if after := c.passwordSecretVersion(c.node(2)); after != passwordBefore {
		t.Errorf("refused joins changed %s's node password (version %s, was %s)", c.node(2), after, passwordBefore)
	}
	log, _ := os.ReadFile(filepath.Join(c.dataDir(1), "logs", "ketch.log"))
	expiredID := strings.SplitN(strings.SplitN(expired, "::", 2)[1], ".", 2)[0]
	for _, want := range [][]string{
		{"wrong server token secret"}, {"no token with ID " + deletedID}, {"belongs to another machine"},
		// kube-controller-manager's tokencleaner may have deleted the expired token already.
		{"token " + expiredID + " expired", "no token with ID " + expiredID},
	} {
		found := false
		for _, w := range want {
			found = found || strings.Contains(string(log), w)
		}
		if !found {
			t.Errorf("the server's log does not record a refusal with %q", want)
		}
	}
}

func (c *multiNode) nodeUIDs() string {
	list, err := c.client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	var out []string
	for _, n := range list.Items {
		out = append(out, n.Name+"="+string(n.UID))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func (c *multiNode) passwordSecretVersion(node string) string {
	s, err := c.client.CoreV1().Secrets("kube-system").Get(context.Background(), node+".node-password.ketch", metav1.GetOptions{})
	if err != nil {
		c.t.Fatalf("node %s's password secret: %v", node, err)
	}
	return s.ResourceVersion
}

// down tears the cluster down with the script and checks that nothing of it is left.
func (c *multiNode) down() {
	t := c.t
	if t.Failed() {
		for i := 1; i <= c.total; i++ {
			if out, err := os.ReadFile(filepath.Join(c.dir, c.node(i), "ketch.out")); err == nil {
				t.Logf("%s's output:\n%s", c.node(i), out)
			}
		}
	}
	if err := c.cl.Down(context.Background()); err != nil {
		t.Error(err)
	}
	var left []string
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), c.name+"-") {
		left = append(left, "netns: "+string(out))
	}
	if out, _ := exec.Command("ip", "-o", "link", "show").Output(); strings.Contains(string(out), c.name+"-") {
		left = append(left, "links of "+c.name)
	}
	if mounts, _ := harness.MountsUnder(c.dir, "/run/ketch-"+c.name); len(mounts) > 0 {
		left = append(left, "mounts: "+strings.Join(mounts, ", "))
	}
	if procs, _ := harness.ProcessesMentioning(c.dir); len(procs) > 0 {
		left = append(left, "processes: "+pids(procs))
	}
	for _, pattern := range []string{"/sys/fs/cgroup/*/ketch/" + c.name + "-*", "/sys/fs/cgroup/ketch/" + c.name + "-*", "/run/ketch-" + c.name + "-*"} {
		if found, _ := filepath.Glob(pattern); len(found) > 0 {
			left = append(left, strings.Join(found, ", "))
		}
	}
	if _, err := os.Stat(c.dir); err == nil {
		left = append(left, c.dir)
		os.RemoveAll(c.dir)
	}
	if len(left) > 0 {
		t.Errorf("host not clean after ketch-cluster.sh down: %s", strings.Join(left, "; "))
	}
}
