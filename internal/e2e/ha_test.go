package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/internal/testutil"
	"github.com/ketch-k8s/ketch/pkg/etcd"
)

// TestHAEmbedded: three servers on embedded etcd (--cluster-init, then two --server joins) and
// an agent, each a host of its own. It checks the members and the kubernetes Service's
// endpoints, traffic across the nodes, the loss of the server that leads both etcd and the
// controllers (kill -9) and its return, every refused join, and --cluster-reset after two of
// the three servers are gone.
func TestHAEmbedded(t *testing.T) {
	c := newHA(t, &harness.Cluster{Name: "ke", Subnet: "10.99.73", Nodes: 4, Servers: 3})
	c.checkNodes()
	for i := 1; i <= 3; i++ {
		if _, ok := c.getNode(c.node(i)).Labels["node-role.kubernetes.io/control-plane"]; !ok {
			t.Errorf("server %s is not labelled control-plane", c.node(i))
		}
	}
	c.checkStatus(1, 3, "embedded etcd")
	c.checkAPIEndpoints(3)
	c.deploy()
	c.checkTraffic()
	victim := c.failover(true)
	c.checkStatus(victim, 3, "embedded etcd")
	c.badJoins()
	c.reset()
}

// TestHAGrowUp: a single server on bbolt, with objects and running pods, restarted with
// --cluster-init keeps every object and pod; a second server then joins, and deleting its Node
// removes its etcd member.
func TestHAGrowUp(t *testing.T) {
	c := newHA(t, &harness.Cluster{Name: "kg", Subnet: "10.99.75", Nodes: 1})
	c.kubectlApply(spreadWorkload)
	eventually(t, 2*time.Minute, "3 echo pods Ready", func() error {
		if pods := c.echoPods(); len(pods) != 3 {
			return fmt.Errorf("ready echo pods: %v", podPlaces(pods))
		}
		return nil
	})
	for i := range 20 {
		c.kubectl("-n", mnNS, "create", "configmap", fmt.Sprintf("before-%02d", i), "--from-literal=i="+fmt.Sprint(i))
	}
	uids, containers := c.objectUIDs(), c.containers()
	c.checkStatus(1, 1, "bbolt")

	c.mustCtl(3*time.Minute, "stop", "--dir", c.dir, c.node(1))
	c.mustCtl(time.Minute, "start", "--dir", c.dir, c.node(1), "--", "--cluster-init")
	c.waitReady(1)
	out := c.output(1)
	if !strings.Contains(out, "moved ") || !strings.Contains(out, "keys from the bbolt datastore into embedded etcd") {
		t.Errorf("the server did not say it moved the bbolt datastore:\n%s", lastLines(out, 30))
	}
	data := c.dataDir(1)
	if _, err := os.Stat(filepath.Join(data, "server", "db", "datastore.db.migrated")); err != nil {
		t.Errorf("the bbolt file was not kept aside: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "server", "db", "datastore.db")); err == nil {
		t.Error("the bbolt file is still where the server would use it")
	}
	eventually(t, time.Minute, "every object with its UID after the move", func() error {
		now := c.objectUIDs()
		var missing []string
		for key, uid := range uids {
			if now[key] != uid {
				missing = append(missing, fmt.Sprintf("%s (%s, now %q)", key, uid, now[key]))
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d of %d objects missing or changed: %s", len(missing), len(uids), strings.Join(missing[:min(len(missing), 10)], ", "))
		}
		return nil
	})
	eventually(t, time.Minute, "the same containers running after the move", func() error {
		if now := c.containers(); !mapsEqual(now, containers) {
			return fmt.Errorf("containers before %v, after %v", containers, now)
		}
		return nil
	})
	c.checkStatus(1, 1, "embedded etcd")

	n := c.addServer()
	c.waitReady(n)
	if out := c.status(n); !strings.Contains(out, "2 voting") || !strings.Contains(out, "an even number") {
		t.Errorf("status after the second server joined, want 2 voting members and a warning:\n%s", out)
	}
	if !strings.Contains(c.output(n), "warning: etcd has 2 voting members, an even number") {
		t.Errorf("the joining server did not warn of an even number of members:\n%s", lastLines(c.output(n), 30))
	}
	// With two members, stopping one would cost the quorum: the Node goes first, which removes
	// the member, and the removed server stops itself.
	if err := c.client.CoreV1().Nodes().Delete(context.Background(), c.node(n), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "the removed server stopping", func() error {
		if out := c.mustCtl(time.Minute, "status", "--dir", c.dir); strings.Contains(lineOf(out, c.node(n)+" "), "running") {
			return fmt.Errorf("status:\n%s", out)
		}
		return nil
	})
	if out := c.output(n); !strings.Contains(out, "this member was removed from the cluster") {
		t.Errorf("the removed server did not say why it stopped:\n%s", lastLines(out, 20))
	}
	eventually(t, time.Minute, "the deleted server's etcd member removed", func() error {
		out, err := c.statusErr(1)
		if err != nil || !strings.Contains(out, "1 member(s)") || strings.Contains(out, c.node(n)) {
			return fmt.Errorf("%v\n%s", err, out)
		}
		return nil
	})
}

// TestHAExternal: two servers on a three-member external etcd (upstream etcd, built from the
// module go.mod pins, with TLS, each member a host of its own) and an agent: the loss of the
// leading server, the loss of etcd's leader, etcd losing its quorum while the servers run, a
// server with the wrong token, and a server whose etcd does not answer.
func TestHAExternal(t *testing.T) {
	etcdBin := buildEtcd(t)
	c := newHA(t, &harness.Cluster{Name: "kx", Subnet: "10.99.74", Nodes: 3, Servers: 2, Etcd: 3, EtcdBin: etcdBin})
	c.checkNodes()
	c.checkStatus(1, 3, "external etcd")
	c.checkAPIEndpoints(2)
	c.deploy()
	victim := c.failover(false)
	_ = victim
	c.etcdLeaderLoss()
	c.etcdQuorumLoss()
	c.badExternal()
}

// newHA is a cluster of the script whose servers share a datastore.
func newHA(t *testing.T, cl *harness.Cluster) *multiNode {
	return newCluster(t, cl)
}

// servers is the number of server nodes (1..servers).
func (c *multiNode) servers() int { return max(c.cl.Servers, 1) }

// mustCtl runs the cluster script with its own time limit.
func (c *multiNode) mustCtl(limit time.Duration, args ...string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	out, err := c.cl.Run(ctx, nil, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// output is node i's console output so far.
func (c *multiNode) output(i int) string {
	b, _ := os.ReadFile(c.cl.Output(i))
	return string(b)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// clientOf is a client of server i alone, failing fast, for a test that must see which server
// answers.
func (c *multiNode) clientOf(i int, timeout time.Duration) kubernetes.Interface {
	c.t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		c.t.Fatal(err)
	}
	rc.Host = "https://" + c.nodeIP(i) + ":6443"
	rc.Timeout = timeout
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		c.t.Fatal(err)
	}
	return client
}

// useServer points the test's client and kubectl at server i, for when another is down.
func (c *multiNode) useServer(i int) {
	c.t.Helper()
	kc, err := os.ReadFile(c.cl.Kubeconfig())
	if err != nil {
		c.t.Fatal(err)
	}
	path := filepath.Join(c.dir, fmt.Sprintf("kubeconfig-%d", i))
	kc = []byte(strings.Replace(string(kc), "https://"+c.nodeIP(1)+":6443", "https://"+c.nodeIP(i)+":6443", 1))
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		c.t.Fatal(err)
	}
	c.kubeconfig = path
	c.client = c.clientOf(i, 30*time.Second)
}

// waitReady waits for node i to be registered and Ready, as seen through a running server.
func (c *multiNode) waitReady(i int) {
	c.t.Helper()
	eventually(c.t, 4*time.Minute, c.node(i)+" Ready", func() error {
		n, err := c.client.CoreV1().Nodes().Get(context.Background(), c.node(i), metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !nodeReady(n) {
			return errors.New("not Ready")
		}
		return nil
	})
}

// statusErr runs `ketch datastore status` on node i, as a user would on that server.
func (c *multiNode) statusErr(i int) (string, error) {
	args := []string{c.bin, "datastore", "status", "--data-dir", c.dataDir(i), "--run-dir", c.cl.RunDir(i)}
	if c.cl.Etcd > 0 {
		pki := c.cl.EtcdPKIDir()
		args = append(args, "--datastore-endpoint", strings.Join(c.cl.EtcdEndpoints(), ","),
			"--datastore-cafile", filepath.Join(pki, "ca.crt"), "--datastore-certfile", filepath.Join(pki, "client.crt"),
			"--datastore-keyfile", filepath.Join(pki, "client.key"))
	}
	return c.nodeExecErr(c.node(i), args...)
}

func (c *multiNode) status(i int) string {
	c.t.Helper()
	out, err := c.statusErr(i)
	if err != nil {
		c.t.Fatalf("ketch datastore status on %s: %v\n%s", c.node(i), err, out)
	}
	return out
}

// checkStatus: `ketch datastore status` on server i shows the store and want healthy voting
// members, one of them the leader.
func (c *multiNode) checkStatus(i, want int, kind string) {
	c.t.Helper()
	var out string
	eventually(c.t, 2*time.Minute, fmt.Sprintf("%d healthy members in ketch datastore status on %s", want, c.node(i)), func() error {
		var err error
		if out, err = c.statusErr(i); err != nil {
			return fmt.Errorf("%v\n%s", err, out)
		}
		head := fmt.Sprintf("datastore: %s, %d member(s), %d voting", kind, want, want)
		if kind == "bbolt" {
			head = "datastore: bbolt, 1 member(s)\n"
		}
		if !strings.Contains(out, head) || strings.Count(out, " healthy ") != want || strings.Count(out, " leader ") != 1 {
			return fmt.Errorf("want %q, %d healthy, one leader:\n%s", head, want, out)
		}
		return nil
	})
	c.t.Logf("ketch datastore status on %s:\n%s", c.node(i), out)
}

// checkAPIEndpoints: every server is an endpoint of the kubernetes Service, which the agents'
// load balancers follow.
func (c *multiNode) checkAPIEndpoints(servers int) {
	c.t.Helper()
	eventually(c.t, time.Minute, "every server in the kubernetes Service's endpoints", func() error {
		list, err := c.client.DiscoveryV1().EndpointSlices("default").List(context.Background(), metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=kubernetes"})
		if err != nil {
			return err
		}
		var ips []string
		for _, s := range list.Items {
			for _, e := range s.Endpoints {
				ips = append(ips, e.Addresses...)
			}
		}
		for i := 1; i <= servers; i++ {
			if !slices.Contains(ips, c.nodeIP(i)) {
				return fmt.Errorf("endpoints %v lack server %s", ips, c.nodeIP(i))
			}
		}
		return nil
	})
}

// etcdClient reaches the cluster's etcd members as a server does: embedded members with the
// etcd client certificate of node 1, external ones with the test's client certificate.
func (c *multiNode) etcdClient(endpoints ...string) *clientv3.Client {
	c.t.Helper()
	cc := etcd.ClientConfig{Endpoints: endpoints}
	if c.cl.Etcd > 0 {
		pki := c.cl.EtcdPKIDir()
		cc.CAFile, cc.CertFile, cc.KeyFile = filepath.Join(pki, "ca.crt"), filepath.Join(pki, "client.crt"), filepath.Join(pki, "client.key")
		if len(endpoints) == 0 {
			cc.Endpoints = c.cl.EtcdEndpoints()
		}
	} else {
		tls := filepath.Join(c.dataDir(1), "server", "tls", "etcd")
		cc.CAFile, cc.CertFile, cc.KeyFile = filepath.Join(tls, "server-ca.crt"), filepath.Join(tls, "client.crt"), filepath.Join(tls, "client.key")
		if len(endpoints) == 0 {
			for i := 1; i <= c.servers(); i++ {
				cc.Endpoints = append(cc.Endpoints, etcd.ClientURL(net.ParseIP(c.nodeIP(i))))
			}
		}
	}
	cli, err := etcd.NewClient(cc)
	if err != nil {
		c.t.Fatal(err)
	}
	return cli
}

// controllerLeader is the server whose kube-controller-manager holds the lease: its holder
// identity starts with the host name, which the script sets to the node's name.
func (c *multiNode) controllerLeader() int {
	c.t.Helper()
	var leader int
	eventually(c.t, time.Minute, "a kube-controller-manager leader", func() error {
		l, err := c.client.CoordinationV1().Leases("kube-system").Get(context.Background(), "kube-controller-manager", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if l.Spec.HolderIdentity == nil {
			return errors.New("no holder")
		}
		for i := 1; i <= c.servers(); i++ {
			if strings.HasPrefix(*l.Spec.HolderIdentity, c.node(i)+"_") {
				leader = i
				return nil
			}
		}
		return fmt.Errorf("holder %q is none of the servers", *l.Spec.HolderIdentity)
	})
	return leader
}

// leadEtcd makes server i's embedded member the etcd leader, so that one kill takes both the
// etcd leader and the controllers.
func (c *multiNode) leadEtcd(i int) {
	t := c.t
	cli := c.etcdClient()
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var target uint64
	for _, m := range list.Members {
		if m.Name == c.node(i) {
			target = m.ID
		}
	}
	for _, m := range list.Members {
		st, err := cli.Status(ctx, m.ClientURLs[0])
		if err != nil || st.Leader != m.ID {
			continue
		}
		if m.ID == target {
			return
		}
		leaderCli := c.etcdClient(m.ClientURLs[0])
		defer leaderCli.Close()
		if _, err := leaderCli.MoveLeader(ctx, target); err != nil {
			t.Fatalf("moving etcd's leadership to %s: %v", c.node(i), err)
		}
		t.Logf("moved etcd's leadership from %s to %s", m.Name, c.node(i))
		return
	}
	t.Fatal("no etcd member says it leads")
}

// writer creates ConfigMaps one after another, each through the next server in turn (the next
// one again if a server does not answer), and keeps those the API acknowledged.
type writer struct {
	mu    sync.Mutex
	acked []string
	times []time.Time
	stop  chan struct{}
	done  chan struct{}
}

func (c *multiNode) startWriter(ns string) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	clients := make([]kubernetes.Interface, c.servers())
	for i := range clients {
		clients[i] = c.clientOf(i+1, 2*time.Second)
	}
	go func() {
		defer close(w.done)
		for n, turn := 0, 0; ; n++ {
			name := fmt.Sprintf("w-%05d", n)
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"n": fmt.Sprint(n)}}
			for {
				select {
				case <-w.stop:
					return
				default:
				}
				turn++
				_, err := clients[turn%len(clients)].CoreV1().ConfigMaps(ns).Create(context.Background(), cm, metav1.CreateOptions{})
				if err == nil || apierrors.IsAlreadyExists(err) {
					// AlreadyExists: an attempt that timed out had been stored after all.
					w.mu.Lock()
					w.acked, w.times = append(w.acked, name), append(w.times, time.Now())
					w.mu.Unlock()
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return w
}

// halt stops the writer and returns the acknowledged names and the longest pause between two
// acknowledgements after since.
func (w *writer) halt(since time.Time) ([]string, time.Duration) {
	close(w.stop)
	<-w.done
	var gap time.Duration
	last := since
	for _, at := range w.times {
		if at.Before(since) {
			continue
		}
		gap = max(gap, at.Sub(last))
		last = at
	}
	return w.acked, gap
}

func (w *writer) ackedSince(t time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.times) > 0 && w.times[len(w.times)-1].After(t)
}

// failover kills (SIGKILL) the server whose kube-controller-manager leads, after making it the
// etcd leader too when etcd is embedded. Writes go on through the other servers; a Deployment
// scaled afterwards reaches its size, scheduled; no acknowledged write is lost; no pod on the
// other nodes restarted. The server then starts again and is Ready. It returns the server.
func (c *multiNode) failover(embedded bool) int {
	t := c.t
	victim := c.controllerLeader()
	if embedded {
		c.leadEtcd(victim)
	}
	survivor := victim%c.servers() + 1
	c.useServer(survivor)
	restarts := c.restarts(c.node(victim))
	c.kubectl("create", "namespace", "ha-writes")
	w := c.startWriter("ha-writes")
	time.Sleep(3 * time.Second)

	killed := time.Now()
	c.mustCtl(time.Minute, "kill", "--dir", c.dir, c.node(victim))
	t.Logf("killed %s (kube-controller-manager leader, etcd leader: %v)", c.node(victim), embedded)
	eventually(t, 90*time.Second, "writes after the kill", func() error {
		if !w.ackedSince(killed.Add(time.Second)) {
			return errors.New("no write acknowledged since the kill")
		}
		return nil
	})
	resumed := time.Since(killed)
	c.kubectl("-n", mnNS, "scale", "deployment", "echo", "--replicas=5")
	eventually(t, 2*time.Minute, "the Deployment scaled after the kill: 5 pods, all scheduled", func() error {
		list, err := c.client.CoreV1().Pods(mnNS).List(context.Background(), metav1.ListOptions{LabelSelector: "app=echo"})
		if err != nil {
			return err
		}
		var scheduled int
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && p.Spec.NodeName != "" {
				scheduled++
			}
		}
		if scheduled < 5 {
			return fmt.Errorf("%d of 5 pods scheduled", scheduled)
		}
		return nil
	})
	controllers := time.Since(killed)
	// Every other node heartbeats after the kill: the servers' kubelets through their own
	// kube-apiserver, the agents' through their load balancers, which left the dead server.
	eventually(t, time.Minute, "every other node's heartbeat after the kill", func() error {
		for i := 1; i <= c.total; i++ {
			if i == victim {
				continue
			}
			l, err := c.client.CoordinationV1().Leases("kube-node-lease").Get(context.Background(), c.node(i), metav1.GetOptions{})
			if err != nil {
				return err
			}
			if l.Spec.RenewTime == nil || !l.Spec.RenewTime.After(killed.Add(time.Second)) {
				return fmt.Errorf("%s's lease last renewed %v, the kill was at %s", c.node(i), l.Spec.RenewTime, killed.Format(time.RFC3339Nano))
			}
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	acked, gap := w.halt(killed)
	t.Logf("after the kill: a write acknowledged again within %s (longest pause between writes %s), the Deployment scaled and scheduled within %s; %d writes acknowledged",
		resumed.Round(100*time.Millisecond), gap.Round(100*time.Millisecond), controllers.Round(100*time.Millisecond), len(acked))

	list, err := c.client.CoreV1().ConfigMaps("ha-writes").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, cm := range list.Items {
		stored[cm.Name] = true
	}
	var lost []string
	for _, name := range acked {
		if !stored[name] {
			lost = append(lost, name)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d acknowledged writes lost: %v", len(lost), lost)
	}
	now := c.restarts(c.node(victim))
	for k, before := range restarts {
		if after, ok := now[k]; ok && after != before {
			t.Errorf("container %s on a surviving node restarted: restart count %s, was %s", k, after, before)
		}
	}

	c.mustCtl(time.Minute, "start", "--dir", c.dir, c.node(victim))
	c.waitReady(victim)
	c.kubectl("-n", mnNS, "scale", "deployment", "echo", "--replicas=3")
	return victim
}

// restarts is the restart count of every container on every node but skip, by pod/container.
func (c *multiNode) restarts(skip string) map[string]string {
	c.t.Helper()
	list, err := c.client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range list.Items {
		if p.Spec.NodeName == skip || p.Spec.NodeName == "" {
			continue
		}
		for _, s := range p.Status.ContainerStatuses {
			out[p.Namespace+"/"+p.Name+"/"+s.Name] = fmt.Sprint(s.RestartCount)
		}
	}
	return out
}

// containers is the container ID of every running container, by pod/container.
func (c *multiNode) containers() map[string]string {
	c.t.Helper()
	list, err := c.client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range list.Items {
		for _, s := range p.Status.ContainerStatuses {
			out[p.Namespace+"/"+p.Name+"/"+s.Name] = fmt.Sprintf("%s restarts=%d", s.ContainerID, s.RestartCount)
		}
	}
	return out
}

// objectUIDs is the UID of every object of the kinds a cluster is made of, by kind/ns/name.
func (c *multiNode) objectUIDs() map[string]string {
	c.t.Helper()
	out := c.kubectl("get", "namespaces,nodes,configmaps,secrets,serviceaccounts,services,deployments,replicasets,daemonsets,pods,roles,rolebindings,clusterroles,clusterrolebindings,customresourcedefinitions",
		"-A", "-o", `jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}={.metadata.uid}{"\n"}{end}`)
	uids := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if key, uid, ok := strings.Cut(line, "="); ok {
			uids[key] = uid
		}
	}
	if len(uids) < 50 {
		c.t.Fatalf("only %d objects listed:\n%s", len(uids), out)
	}
	return uids
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// addServer adds a server that joins node 1, and returns its number.
func (c *multiNode) addServer() int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n, err := c.cl.AddNode(ctx, true)
	if err != nil {
		c.t.Fatal(err)
	}
	c.total = c.cl.Nodes
	return n
}

// spareHost is one more host on the cluster's network, with nothing running: a network
// namespace joined to the bridge at .250, removed when the test ends. Bad joins start there.
type spareHost struct {
	ns, ip, dataDir, runDir string
}

func (c *multiNode) spareHost() *spareHost {
	t := c.t
	h := &spareHost{ns: c.name + "-x", ip: c.subnet + ".250", dataDir: filepath.Join(c.dir, "spare"), runDir: "/run/ketch-" + c.name + "-x"}
	veth := h.ns + "-h"
	run := func(args ...string) {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", h.ns)
	t.Cleanup(func() {
		exec.Command("ip", "netns", "delete", h.ns).Run()
		exec.Command("ip", "link", "delete", veth).Run()
		os.RemoveAll(h.runDir)
	})
	run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
	run("ip", "link", "set", veth, "master", c.name+"-br", "up")
	run("ip", "-n", h.ns, "link", "set", "lo", "up")
	run("ip", "-n", h.ns, "addr", "add", h.ip+"/24", "dev", "eth0")
	run("ip", "-n", h.ns, "link", "set", "eth0", "up")
	run("ip", "-n", h.ns, "route", "add", "default", "via", c.subnet+".1")
	return h
}

// serverRun is a `ketch server` on the spare host.
type serverRun struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
	err  error
}

// start runs `ketch server` on the spare host with a fresh data dir and args.
func (h *spareHost) start(t *testing.T, bin string, args ...string) *serverRun {
	t.Helper()
	os.RemoveAll(h.dataDir)
	os.RemoveAll(h.runDir)
	all := append([]string{"--net=/run/netns/" + h.ns, bin, "server", "--data-dir", h.dataDir, "--run-dir", h.runDir,
		"--node-name", h.ns, "--node-ip", h.ip, "--flannel-iface", "eth0", "--write-kubeconfig", filepath.Join(h.dataDir, "kubeconfig")}, args...)
	r := &serverRun{cmd: exec.Command("nsenter", all...), done: make(chan struct{})}
	pr, pw := io.Pipe()
	r.cmd.Stdout, r.cmd.Stderr = pw, pw
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			r.mu.Lock()
			r.out.WriteString(s.Text() + "\n")
			r.mu.Unlock()
		}
	}()
	go func() { r.err = r.cmd.Wait(); pw.Close(); close(r.done) }()
	t.Cleanup(func() { r.cmd.Process.Kill(); <-r.done })
	return r
}

func (r *serverRun) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// refused waits for the server to exit with an error saying want.
func (r *serverRun) refused(t *testing.T, what, want string) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(2 * time.Minute):
		r.cmd.Process.Kill()
		<-r.done
		t.Fatalf("%s: still running after 2 minutes, want a refusal saying %q:\n%s", what, want, r.output())
	}
	if r.err == nil || !strings.Contains(r.output(), want) {
		t.Errorf("%s: exit %v, want a refusal saying %q:\n%s", what, r.err, want, r.output())
	}
}

// says waits until the server's output says want, then stops it with SIGTERM and waits for it.
func (r *serverRun) says(t *testing.T, what, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(r.output(), want) {
		if time.Now().After(deadline) {
			t.Errorf("%s: not within a minute: want %q:\n%s", what, want, r.output())
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Errorf("%s: still running 30s after SIGTERM:\n%s", what, r.output())
	}
}

// memberNames is the etcd members' names, sorted.
func (c *multiNode) memberNames() string {
	cli := c.etcdClient()
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := cli.MemberList(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	var names []string
	for _, m := range list.Members {
		names = append(names, fmt.Sprintf("%s(learner=%v)", m.Name, m.IsLearner))
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}

// badJoins: each way a server's join is refused leaves the cluster's members as they were and
// no etcd data on the refused machine; an unreachable first server is waited for.
func (c *multiNode) badJoins() {
	t := c.t
	h := c.spareHost()
	tokenFile := filepath.Join(c.dataDir(1), "server", "token")
	raw, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimSpace(string(raw))
	secret = secret[strings.LastIndex(secret, ":")+1:]
	first := "https://" + c.nodeIP(1) + ":6443"
	members := c.memberNames()
	noneLeft := func(what string) {
		t.Helper()
		if got := c.memberNames(); got != members {
			t.Errorf("%s: the etcd members changed from %s to %s", what, members, got)
		}
		if _, err := os.Stat(filepath.Join(h.dataDir, "server", "db", "etcd")); err == nil {
			t.Errorf("%s: etcd data left on the refused server", what)
		}
	}

	hash := strings.TrimPrefix(strings.TrimSpace(string(raw))[:strings.Index(string(raw), "::")], "K10")
	h.start(t, c.bin, "--server", first, "--token", "K10"+hash+"::server:not-the-cluster-secret").
		refused(t, "a wrong token", "refused the token: a server joins with the first server's server token")
	noneLeft("a wrong token")

	// A bare secret is checked by the server's proof that it knows it: a wrong one fails there.
	h.start(t, c.bin, "--server", first, "--token", "not-the-cluster-secret").
		refused(t, "a wrong bare secret", "the server's CA does not match the token")
	noneLeft("a wrong bare secret")

	h.start(t, c.bin, "--server", first, "--token", "K10"+strings.Repeat("0", 64)+"::server:"+secret).
		refused(t, "a token for another CA", "the server's CA does not match the token")
	noneLeft("a token for another CA")

	h.start(t, c.bin, "--server", first, "--token-file", tokenFile, "--cluster-cidr", "10.52.0.0/16", "--cluster-domain", "other.local").
		refused(t, "other settings", "--cluster-cidr is 10.52.0.0/16 here but 10.42.0.0/16 on the cluster's servers; --cluster-domain is other.local here but cluster.local")
	noneLeft("other settings")

	h.start(t, c.bin, "--server", "https://"+c.subnet+".249:6443", "--token-file", tokenFile).
		says(t, "an unreachable first server", "waiting for the server at https://"+c.subnet+".249:6443")
	noneLeft("an unreachable first server")

	// A join that fails after its member was added: the new member cannot reach its peers, so
	// it cannot start; the join removes the member it added.
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		cmd := exec.Command("ip", "netns", "exec", h.ns, "iptables", "-A", chain, "-p", "tcp", "--dport", "2380", "-j", "DROP")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cutting the spare host's etcd peer traffic: %v\n%s", err, out)
		}
	}
	r := h.start(t, c.bin, "--server", first, "--token-file", tokenFile)
	sawLearner := false
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if strings.Contains(c.memberNames(), "learner=true") {
			sawLearner = true
		}
		select {
		case <-r.done:
		default:
			continue
		}
		break
	}
	r.refused(t, "a join whose member cannot reach its peers", "etcd member "+h.ns)
	t.Logf("the cut-off join's learner was seen in the member list: %v", sawLearner)
	noneLeft("a join whose member cannot reach its peers")

	// A second --cluster-init on a server that joined is refused, with --server still given or
	// without it; the server then starts normally.
	c.mustCtl(3*time.Minute, "stop", "--dir", c.dir, c.node(2))
	out, err := exec.Command("nsenter", "--net=/run/netns/"+c.node(2), c.bin, "server", "--cluster-init",
		"--data-dir", c.dataDir(2), "--run-dir", c.cl.RunDir(2), "--node-name", c.node(2), "--node-ip", c.nodeIP(2), "--flannel-iface", "eth0").CombinedOutput()
	if want := "--cluster-init starts a new cluster, but this server already belongs to one: it joined " + first; err == nil || !strings.Contains(string(out), want) {
		t.Errorf("--cluster-init on a server that joined: %v, want a refusal saying %q:\n%s", err, want, out)
	}
	c.cl.StartNodeWith(context.Background(), c.node(2), "--cluster-init")
	eventually(t, time.Minute, "the refusal of --cluster-init with --server", func() error {
		if out := c.output(2); !strings.Contains(out, "--cluster-init starts a new cluster and --server joins an existing one: give one of them") {
			return fmt.Errorf("not in the output yet:\n%s", lastLines(out, 10))
		}
		return nil
	})
	eventually(t, time.Minute, c.node(2)+" exited", func() error {
		if out := c.mustCtl(time.Minute, "status", "--dir", c.dir); strings.Contains(lineOf(out, c.node(2)+" "), "running") {
			return fmt.Errorf("status:\n%s", out)
		}
		return nil
	})
	c.mustCtl(time.Minute, "start", "--dir", c.dir, c.node(2))
	c.waitReady(2)
}

func lineOf(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// reset: with two of three servers gone for good, the third has no quorum; --cluster-reset
// brings its API back with all the data.
func (c *multiNode) reset() {
	t := c.t
	list, err := c.client.CoreV1().ConfigMaps("ha-writes").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := len(list.Items)
	for i := 2; i <= 3; i++ {
		c.mustCtl(3*time.Minute, "stop", "--dir", c.dir, c.node(i))
	}
	c.useServer(1)
	one := c.clientOf(1, 3*time.Second)
	eventually(t, 2*time.Minute, "server 1 without quorum failing writes", func() error {
		_, err := one.CoreV1().ConfigMaps("default").Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "no-quorum-"}}, metav1.CreateOptions{})
		if err == nil {
			return errors.New("a write succeeded")
		}
		return nil
	})
	c.mustCtl(3*time.Minute, "stop", "--dir", c.dir, c.node(1))
	c.mustCtl(time.Minute, "start", "--dir", c.dir, c.node(1), "--", "--cluster-reset")
	c.waitReady(1)
	if out := c.output(1); !strings.Contains(out, "etcd was reset to this one member. Remove --cluster-reset") {
		t.Errorf("the reset server did not say what to do next:\n%s", lastLines(out, 20))
	}
	list, err = c.client.CoreV1().ConfigMaps("ha-writes").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != before {
		t.Errorf("%d ConfigMaps after the reset, %d before", len(list.Items), before)
	}
	c.checkStatus(1, 1, "embedded etcd")
	if _, err := c.client.CoreV1().ConfigMaps("default").Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after-reset"}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("a write after the reset: %v", err)
	}
}

// etcdLeaderLoss kills the external etcd's leader: writes go on; it starts again and rejoins.
func (c *multiNode) etcdLeaderLoss() {
	t := c.t
	cli := c.etcdClient()
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader := 0
	for j := 1; j <= c.cl.Etcd; j++ {
		st, err := cli.Status(ctx, c.cl.EtcdEndpoints()[j-1])
		if err == nil && st.Leader == st.Header.MemberId {
			leader = j
		}
	}
	if leader == 0 {
		t.Fatal("no external etcd member leads")
	}
	w := c.startWriter("ha-writes")
	time.Sleep(2 * time.Second)
	killed := time.Now()
	c.mustCtl(time.Minute, "kill", "--dir", c.dir, c.cl.EtcdMember(leader))
	eventually(t, time.Minute, "writes after etcd's leader was killed", func() error {
		if !w.ackedSince(killed.Add(time.Second)) {
			return errors.New("no write acknowledged since the kill")
		}
		return nil
	})
	time.Sleep(3 * time.Second)
	_, gap := w.halt(killed)
	t.Logf("killed etcd leader %s: longest pause between acknowledged writes %s", c.cl.EtcdMember(leader), gap.Round(100*time.Millisecond))
	c.mustCtl(time.Minute, "start", "--dir", c.dir, c.cl.EtcdMember(leader))
	c.checkStatus(1, 3, "external etcd")
}

// etcdQuorumLoss stops two of the three etcd members under running servers: kube-apiserver
// reports it, and answers again once they are back, without a restart of ketch.
func (c *multiNode) etcdQuorumLoss() {
	t := c.t
	pid := c.mustCtl(time.Minute, "status", "--dir", c.dir)
	for j := 2; j <= 3; j++ {
		c.mustCtl(time.Minute, "stop", "--dir", c.dir, c.cl.EtcdMember(j))
	}
	one := c.clientOf(1, 5*time.Second)
	eventually(t, 2*time.Minute, "kube-apiserver reporting etcd down", func() error {
		body, err := one.CoreV1().RESTClient().Get().AbsPath("/readyz").Param("verbose", "1").DoRaw(context.Background())
		if err == nil || !strings.Contains(string(body), "etcd") {
			return fmt.Errorf("readyz: %v\n%s", err, body)
		}
		t.Logf("readyz without etcd's quorum:\n%s", lastLines(string(body), 40))
		return nil
	})
	for j := 2; j <= 3; j++ {
		c.mustCtl(time.Minute, "start", "--dir", c.dir, c.cl.EtcdMember(j))
	}
	eventually(t, 2*time.Minute, "kube-apiserver ready again", func() error {
		_, err := one.CoreV1().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
		return err
	})
	if after := c.mustCtl(time.Minute, "status", "--dir", c.dir); lineOf(after, c.node(1)+" ") != lineOf(pid, c.node(1)+" ") {
		t.Errorf("server 1 restarted while etcd was down: before %q, after %q", lineOf(pid, c.node(1)+" "), lineOf(after, c.node(1)+" "))
	}
}

// badExternal: a server with another token is refused and changes nothing in the datastore; a
// server whose etcd does not answer says so, naming the endpoint and the TLS files, and waits.
func (c *multiNode) badExternal() {
	t := c.t
	h := c.spareHost()
	pki := c.cl.EtcdPKIDir()
	tls := []string{"--datastore-cafile", filepath.Join(pki, "ca.crt"), "--datastore-certfile", filepath.Join(pki, "client.crt"), "--datastore-keyfile", filepath.Join(pki, "client.key")}
	cli := c.etcdClient()
	defer cli.Close()
	get := func() string {
		resp, err := cli.Get(context.Background(), "/ketch/bootstrap")
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("the bootstrap data: %v", err)
		}
		return fmt.Sprintf("%d", resp.Kvs[0].ModRevision)
	}
	before := get()
	h.start(t, c.bin, append([]string{"--datastore-endpoint", strings.Join(c.cl.EtcdEndpoints(), ","), "--token", "not-the-cluster-secret"}, tls...)...).
		refused(t, "another token", "this server's token cannot decrypt it: give every server the token of the first one")
	if after := get(); after != before {
		t.Errorf("the refused server changed the bootstrap data (revision %s, was %s)", after, before)
	}
	unreachable := "https://" + c.subnet + ".249:2379"
	h.start(t, c.bin, append([]string{"--datastore-endpoint", unreachable, "--token", "any-cluster-secret"}, tls...)...).
		says(t, "an unreachable etcd", "etcd at "+unreachable+" (CA "+filepath.Join(pki, "ca.crt"))
}

// buildEtcd builds upstream etcd from the module go.mod pins.
func buildEtcd(t *testing.T) string {
	t.Helper()
	testutil.SkipIfShort(t, "builds etcd")
	bin := filepath.Join(t.TempDir(), "etcd")
	cmd := exec.Command("go", "build", "-o", bin, "./internal/testutil/etcdserver")
	cmd.Dir = testutil.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building etcd: %v\n%s", err, out)
	}
	return bin
}
