package cmd

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/bench/stats"
	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/pkg/etcd"
	"github.com/ketch-k8s/ketch/pkg/lifecycle"
	"github.com/ketch-k8s/ketch/tools/ketch-bench/sections"
)

// `ketch-bench ha` measures what high availability costs and gives, with clusters of
// scripts/ketch-cluster.sh (each node in its own network namespace): the loss of the leading
// server of three on embedded etcd (writes, controllers, the agents' view of the servers), an
// idle server's memory on bbolt, on a one-member embedded etcd and as one of three, and the
// write throughput of bbolt against embedded etcd.

var haCmd = &command{
	name:     "ha",
	synopsis: "ha --ketch-bin PATH [flags]",
	help: `ha: high availability, with clusters of scripts/ketch-cluster.sh, one after the other: a lone
bbolt server, a lone --cluster-init server and three servers on embedded etcd with an agent.
kill -9 of the leading server (time until writes succeed again, until the controllers act
again, until the dead server leaves the kubernetes endpoints), each several times; an idle
server's memory on each store; puts/s and latency of bbolt against embedded etcd. Runs as root,
holds /tmp/ketch-host.lock and takes every cluster down at the end.

  --ketch-bin PATH     ketch binary to benchmark (required)
  --out FILE           markdown file whose ha section is replaced
  --kills N            kills of the leading server (default 3)
  --quick              1 kill, 15 s idle, one run of 4 clients × 500 puts per store
  --script PATH        ketch-cluster.sh (default: ../scripts/ from ketch-killall.sh, else next to it)
  --killall PATH       ketch-killall.sh (default package/ketch-killall.sh, here or next to bin/)
`,
	run: runHA,
}

type haOptions struct {
	ketchBin string
	out      string
	quick    bool
	kills    int
	script   string
	killall  string
	args     []string
}

type haSizes struct {
	kills                int
	idle                 time.Duration // cluster Ready → memory sample
	putClients, putsEach int
	putRuns              int // per store
	valueSize            int
	limit                time.Duration // per observation of a kill
	backTimeout          time.Duration // start of the killed server → back
}

func defaultHASizes(quick bool, kills int) haSizes {
	s := haSizes{kills: kills, idle: time.Minute, putClients: 16, putsEach: 2000, putRuns: 3, valueSize: 1024, limit: 90 * time.Second, backTimeout: 4 * time.Minute}
	if quick {
		s.kills, s.idle, s.putClients, s.putsEach, s.putRuns = 1, 15*time.Second, 4, 500, 1
	}
	return s
}

// The clusters: names of at most 4 characters and /24s no test uses.
const (
	haName, haSubnet       = "bh", "10.99.91" // 3 servers on embedded etcd, 1 agent
	bboltName, bboltSubnet = "bb", "10.99.92" // a lone bbolt server
	initName, initSubnet   = "bi", "10.99.93" // a lone --cluster-init server
	haServers, haNodes     = 3, 4
	haAgent                = 4
	haNamespace            = "ha-bench"
	haReplicas             = 3
	haPutPrefix            = "/bench/"
)

func parseHAOptions(args []string) (haOptions, error) {
	o := haOptions{args: args}
	flags := newFlags("ha")
	flags.StringVar(&o.ketchBin, "ketch-bin", "", "")
	flags.StringVar(&o.out, "out", "", "")
	flags.BoolVar(&o.quick, "quick", false, "")
	flags.IntVar(&o.kills, "kills", 3, "")
	flags.StringVar(&o.script, "script", "", "")
	flags.StringVar(&o.killall, "killall", "", "")
	if err := parseFlags(flags, args, &o.ketchBin); err != nil {
		return o, err
	}
	if o.kills < 1 {
		return o, errors.New("--kills must be at least 1")
	}
	return o, nil
}

func runHA(args []string) (err error) {
	opts, err := parseHAOptions(args)
	if err != nil {
		return err
	}
	st, err := startClusterBench(&opts.ketchBin, &opts.killall, &opts.script)
	if err != nil {
		return err
	}
	defer st.end()
	ctx, started, logf := st.ctx, st.started, st.logf

	b := &haBench{opts: opts, sizes: defaultHASizes(opts.quick, opts.kills), logf: logf}
	defer func() {
		if cerr := b.cleanup(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	machine := report.DescribeMachine("/tmp", opts.ketchBin)

	res, err := b.run(ctx)
	if ctx.Err() != nil {
		return errors.New("interrupted; the clusters were taken down")
	}
	if err != nil {
		return err
	}
	if err := unchangedBinary(opts.ketchBin, st.binInfo); err != nil {
		return err
	}
	if err := b.cleanup(); err != nil {
		return err
	}
	sz := b.sizes
	rep := sections.HA{Quick: opts.quick, Args: opts.args, KetchBin: opts.ketchBin, Idle: sz.idle,
		PutClients: sz.putClients, PutsPerClient: sz.putsEach, ValueSize: sz.valueSize, PutRuns: sz.putRuns, Limit: sz.limit,
		WriterTimeout: writerTimeout, ProbeTimeout: probeTimeout,
		Machine: machine, Result: res, Elapsed: time.Since(started), Date: started}
	return publish(opts.out, "ha", rep.Section(), rep.Elapsed, logf)
}

// haBench holds what cleanup needs: every cluster brought up.
type haBench struct {
	opts     haOptions
	sizes    haSizes
	logf     func(string, ...any)
	clusters []*haCluster
}

// run measures the lone servers first, each alone on the machine, then the three servers.
func (b *haBench) run(ctx context.Context) (sections.HAResult, error) {
	res := sections.HAResult{Load: report.LoadAverage()}
	payload := make([]byte, 1<<20)
	if _, err := rand.Read(payload); err != nil {
		return res, err
	}

	// A lone bbolt server: memory, then puts on its datastore socket.
	c, err := b.up(ctx, bboltName, bboltSubnet, 1, 1, "lone bbolt server (`up --nodes 1`)", &res)
	if err != nil {
		return res, err
	}
	if err := b.idleMemory(ctx, c, []int{1}, sections.HAStoreBbolt, &res); err != nil {
		return res, err
	}
	sock := "unix://" + filepath.Join(c.RunDir(1), "datastore.sock")
	for range b.sizes.putRuns {
		if err := b.puts(ctx, etcd.ClientConfig{Endpoints: []string{sock}}, sections.HAWritesBbolt, sock, payload, &res); err != nil {
			return res, err
		}
	}
	if err := c.down(b.logf); err != nil {
		return res, err
	}

	// A lone --cluster-init server: an embedded etcd of one member.
	c, err = b.up(ctx, initName, initSubnet, 1, 1, "lone embedded-etcd server (`up --nodes 1 -- --cluster-init`)", &res, "--cluster-init")
	if err != nil {
		return res, err
	}
	if err := b.idleMemory(ctx, c, []int{1}, sections.HAStoreEtcd1, &res); err != nil {
		return res, err
	}
	url := etcd.ClientURL(net.ParseIP(c.NodeIP(1)))
	for range b.sizes.putRuns {
		if err := b.puts(ctx, c.etcdConfig(url), sections.HAWritesEtcd1, url, payload, &res); err != nil {
			return res, err
		}
	}
	if err := c.down(b.logf); err != nil {
		return res, err
	}

	// Three servers on embedded etcd and an agent.
	c, err = b.up(ctx, haName, haSubnet, haNodes, haServers, "three servers on embedded etcd and an agent (`up --nodes 4 --servers 3`)", &res)
	if err != nil {
		return res, err
	}
	if err := b.idleMemory(ctx, c, []int{1, 2, 3}, sections.HAStoreEtcd3, &res); err != nil {
		return res, err
	}
	// Through the leader's member and through a follower's: kube-apiserver writes through its
	// own server's member, which is the leader on one server of three.
	if err := c.leadEtcd(ctx, 1, b.logf); err != nil {
		return res, err
	}
	for range b.sizes.putRuns {
		for _, w := range []struct {
			i     int
			store string
		}{{1, sections.HAWritesLeader}, {2, sections.HAWritesFollows}} {
			url := etcd.ClientURL(net.ParseIP(c.NodeIP(w.i)))
			if lead, err := c.etcdLeader(ctx); err != nil {
				return res, err
			} else if (lead == w.i) != (w.i == 1) {
				return res, fmt.Errorf("etcd's leader moved to %s during the write measurements", c.Node(lead))
			}
			if err := b.puts(ctx, c.etcdConfig(url), w.store, url, payload, &res); err != nil {
				return res, err
			}
		}
	}
	if err := c.prepareFailover(ctx); err != nil {
		return res, err
	}
	for round := 1; round <= b.sizes.kills; round++ {
		k, err := c.failover(ctx, round, b.sizes, b.logf)
		if err != nil {
			return res, fmt.Errorf("kill %d: %w", round, err)
		}
		res.Kills = append(res.Kills, k)
	}
	if err := c.down(b.logf); err != nil {
		return res, err
	}
	res.LoadEnd = report.LoadAverage()
	return res, nil
}

// up brings a cluster up and records how long it took.
func (b *haBench) up(ctx context.Context, name, subnet string, nodes, servers int, what string, res *sections.HAResult, serverArgs ...string) (*haCluster, error) {
	c := &haCluster{Cluster: harness.Cluster{Script: b.opts.script, Bin: b.opts.ketchBin, Name: name, Subnet: subnet, Nodes: nodes}}
	if servers > 1 {
		c.Servers = servers
	}
	b.clusters = append(b.clusters, c)
	took, err := c.up(ctx, b.logf, serverArgs...)
	if err != nil {
		return nil, err
	}
	res.Ups = append(res.Ups, sections.HAUp{What: what, Took: took})
	return c, nil
}

// idleMemory waits until the cluster has been up for the idle time, then reads the memory of
// the servers given.
func (b *haBench) idleMemory(ctx context.Context, c *haCluster, servers []int, store string, res *sections.HAResult) error {
	wait := time.Until(c.readyAt.Add(b.sizes.idle))
	b.logf("%s: idle for %s before the memory sample", c.Name, wait.Round(time.Second))
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(wait):
	}
	for _, i := range servers {
		pid, err := c.PID(i)
		if err != nil {
			return err
		}
		mem, err := harness.ReadNodeMemory(pid, c.Socket(i))
		if err != nil {
			return fmt.Errorf("%s: %w", c.Node(i), err)
		}
		res.Memory = append(res.Memory, sections.HAMemory{Node: c.Node(i), Store: store, Mem: mem})
		b.logf("%s idle: ketch process PSS %s (anon %s), RSS %s; whole node PSS %s", c.Node(i), report.Bytes(float64(mem.Ketch.PSS)),
			report.Bytes(float64(mem.Ketch.Anon)), report.Bytes(float64(mem.Ketch.RSS)), report.Bytes(float64(mem.Total().PSS)))
	}
	return nil
}

// puts runs the put workload against one datastore and deletes its keys afterwards.
func (b *haBench) puts(ctx context.Context, cc etcd.ClientConfig, store, endpoint string, payload []byte, res *sections.HAResult) error {
	cli, err := etcd.NewClient(cc)
	if err != nil {
		return err
	}
	defer cli.Close()
	sz := b.sizes
	run, err := putLoad(ctx, cli, sz.putClients, sz.putsEach, sz.valueSize, payload)
	if err != nil {
		return fmt.Errorf("puts to %s: %w", store, err)
	}
	i := slices.IndexFunc(res.Writes, func(t sections.HAThroughput) bool { return t.Store == store })
	if i < 0 {
		res.Writes = append(res.Writes, sections.HAThroughput{Store: store, Endpoint: endpoint})
		i = len(res.Writes) - 1
	}
	res.Writes[i].Runs = append(res.Writes[i].Runs, run)
	b.logf("puts to %s: %.0f/s, p50 %s, p99 %s", store, run.PerSecond(), report.Duration(run.P50), report.Duration(run.P99))
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	del, err := cli.Delete(dctx, haPutPrefix, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("deleting %s in %s: %w", haPutPrefix, store, err)
	}
	b.logf("deleted %d keys under %s", del.Deleted, haPutPrefix)
	return nil
}

// putLoad has clients goroutines put distinct keys of valueSize bytes under haPutPrefix through
// one connection, perClient each after a tenth as many unmeasured, and measures them.
func putLoad(ctx context.Context, cli *clientv3.Client, clients, perClient, valueSize int, payload []byte) (sections.HAPutRun, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	warmup, n := clients*perClient/10, clients*perClient
	var next atomic.Int64
	type part struct {
		lat         []time.Duration
		first, last time.Time
	}
	parts := make([]part, clients)
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			p := &parts[w]
			for ctx.Err() == nil {
				seq := int(next.Add(1) - 1)
				if seq >= warmup+n {
					return
				}
				off := (seq * 4099) % (len(payload) - valueSize)
				start := time.Now()
				pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := cli.Put(pctx, fmt.Sprintf("%sc%d/%09d", haPutPrefix, clients, seq), string(payload[off:off+valueSize]))
				pcancel()
				if err != nil {
					cancel(fmt.Errorf("client %d: %w", w, err))
					return
				}
				end := time.Now()
				if seq < warmup {
					continue
				}
				if p.first.IsZero() {
					p.first = start
				}
				p.last = end
				p.lat = append(p.lat, end.Sub(start))
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return sections.HAPutRun{}, err
	}
	var t sections.HAPutRun
	var first, last time.Time
	var lat []time.Duration
	for _, p := range parts {
		if len(p.lat) == 0 {
			continue
		}
		lat = append(lat, p.lat...)
		if first.IsZero() || p.first.Before(first) {
			first = p.first
		}
		if p.last.After(last) {
			last = p.last
		}
	}
	t.Puts, t.Window = len(lat), last.Sub(first)
	if t.Puts == 0 || t.Window <= 0 {
		return t, errors.New("no put measured")
	}
	pct := stats.Percentiles(lat, 0.5, 0.99)
	t.P50, t.P99 = pct[0], pct[1]
	return t, nil
}

// cleanup takes every cluster down and checks that nothing of its nodes is left.
func (b *haBench) cleanup() error {
	var errs []error
	for _, c := range b.clusters {
		errs = append(errs, c.down(b.logf))
	}
	return errors.Join(errs...)
}

// haCluster is one cluster of the bench.
type haCluster struct {
	harness.Cluster
	client       kubernetes.Interface
	readyAt      time.Time
	isUp, isDown bool
	pauseImage   string
}

func (c *haCluster) up(ctx context.Context, logf func(string, ...any), serverArgs ...string) (time.Duration, error) {
	dir, err := os.MkdirTemp("/tmp", "kbh-") // short: socket paths below it are length-limited
	if err != nil {
		return 0, fmt.Errorf("cluster dir: %w", err)
	}
	c.Dir = dir
	logf("%s: up --nodes %d --servers %d --name %s --subnet %s %s (dir %s)", c.Name, c.Nodes, max(c.Servers, 1), c.Name, c.Subnet, strings.Join(serverArgs, " "), dir)
	t0 := time.Now()
	c.isUp = true // from here on, down is needed whatever happens
	if err := c.Up(ctx, serverArgs...); err != nil {
		return 0, err
	}
	c.readyAt = time.Now()
	took := c.readyAt.Sub(t0)
	logf("%s: %d nodes Ready after %s", c.Name, c.Nodes, report.Seconds(took))
	if c.client, err = c.clientOf(1, 30*time.Second); err != nil {
		return 0, err
	}
	return took, nil
}

// down takes the cluster down and checks that nothing of its nodes is left on the host: no
// process, mount, network namespace or link. It runs on a fresh context: it must also work
// after an interrupt.
func (c *haCluster) down(logf func(string, ...any)) error {
	if !c.isUp || c.isDown {
		return nil
	}
	logf("%s: down", c.Name)
	if err := c.Down(context.Background()); err != nil {
		return err
	}
	c.isDown = true
	var errs []error
	for i := 1; i <= c.Nodes; i++ {
		errs = append(errs, harness.HostClean(c.DataDir(i), c.RunDir(i)))
		if _, err := os.Stat("/run/netns/" + c.Node(i)); err == nil {
			errs = append(errs, fmt.Errorf("network namespace %s left", c.Node(i)))
		}
		if _, err := net.InterfaceByName(c.Node(i) + "-h"); err == nil {
			errs = append(errs, fmt.Errorf("link %s-h left", c.Node(i)))
		}
	}
	if _, err := net.InterfaceByName(c.Name + "-br"); err == nil {
		errs = append(errs, fmt.Errorf("bridge %s-br left", c.Name))
	}
	if procs, err := harness.ProcessesMentioning(c.Dir + "/"); err == nil {
		for _, p := range procs {
			errs = append(errs, fmt.Errorf("process %d (%s) left", p.PID, strings.Join(p.Argv, " ")))
		}
	}
	return errors.Join(errs...)
}

// clientOf is a client of server i alone.
func (c *haCluster) clientOf(i int, timeout time.Duration) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Kubeconfig(), err)
	}
	cfg.Host = "https://" + net.JoinHostPort(c.NodeIP(i), "6443")
	cfg.Timeout = timeout
	// The bench polls every 100 ms; the default client rate limit (5/s) would hold it up.
	cfg.QPS, cfg.Burst = 100, 200
	// The bench reads the Endpoints the load balancers' EndpointSlices mirror, every 100 ms.
	cfg.WarningHandler = rest.NoWarnings{}
	return kubernetes.NewForConfig(cfg)
}

// etcdConfig reaches embedded members with node 1's etcd client certificate.
func (c *haCluster) etcdConfig(endpoints ...string) etcd.ClientConfig {
	tls := filepath.Join(c.DataDir(1), "server", "tls", "etcd")
	return etcd.ClientConfig{Endpoints: endpoints, CAFile: filepath.Join(tls, "server-ca.crt"),
		CertFile: filepath.Join(tls, "client.crt"), KeyFile: filepath.Join(tls, "client.key")}
}

func (c *haCluster) memberURLs() []string {
	var urls []string
	for i := 1; i <= max(c.Servers, 1); i++ {
		urls = append(urls, etcd.ClientURL(net.ParseIP(c.NodeIP(i))))
	}
	return urls
}

// etcdHealth is the number of voting members that answer, have no errors and see a leader, and
// the server whose member leads (0: none).
func (c *haCluster) etcdHealth(ctx context.Context) (healthy, leader int, err error) {
	cli, err := etcd.NewClient(c.etcdConfig(c.memberURLs()...))
	if err != nil {
		return 0, 0, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := cli.MemberList(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, m := range list.Members {
		if m.IsLearner || len(m.ClientURLs) == 0 {
			continue
		}
		sctx, scancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := cli.Status(sctx, m.ClientURLs[0])
		scancel()
		if err != nil || len(st.Errors) > 0 || st.Leader == 0 {
			continue
		}
		healthy++
		if st.Leader == m.ID {
			for i := 1; i <= max(c.Servers, 1); i++ {
				if m.Name == c.Node(i) {
					leader = i
				}
			}
		}
	}
	return healthy, leader, nil
}

func (c *haCluster) etcdLeader(ctx context.Context) (int, error) {
	_, leader, err := c.etcdHealth(ctx)
	if err == nil && leader == 0 {
		err = errors.New("no etcd member leads")
	}
	return leader, err
}

// leadEtcd makes server i's member etcd's leader, as the HA e2e test does, and waits until it
// says so.
func (c *haCluster) leadEtcd(ctx context.Context, i int, logf func(string, ...any)) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		leader, err := c.etcdLeader(ctx)
		if err == nil && leader == i {
			return nil
		}
		if err == nil {
			cli, err := etcd.NewClient(c.etcdConfig(etcd.ClientURL(net.ParseIP(c.NodeIP(leader)))))
			if err != nil {
				return err
			}
			var target uint64
			if list, lerr := cli.MemberList(ctx); lerr == nil {
				for _, m := range list.Members {
					if m.Name == c.Node(i) {
						target = m.ID
					}
				}
			}
			if target != 0 {
				if _, err := cli.MoveLeader(ctx, target); err == nil {
					logf("moved etcd's leadership from %s to %s", c.Node(leader), c.Node(i))
				} else {
					logf("moving etcd's leadership to %s: %v; retrying", c.Node(i), err)
				}
			}
			cli.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("making %s etcd's leader: %w (last: %v)", c.Node(i), ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// leaseHolder is the server holding a kube-system lease (0: none of them), through client.
func (c *haCluster) leaseHolder(ctx context.Context, client kubernetes.Interface, name string) (int, error) {
	l, err := client.CoordinationV1().Leases("kube-system").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return 0, err
	}
	if l.Spec.HolderIdentity == nil {
		return 0, nil
	}
	for i := 1; i <= c.Servers; i++ {
		if strings.HasPrefix(*l.Spec.HolderIdentity, c.Node(i)+"_") {
			return i, nil
		}
	}
	return 0, nil
}

// prepareFailover makes the namespaces and finds the pause image the Deployments' pods run:
// it is on every node (the pod sandbox image), so the pods start without a registry.
func (c *haCluster) prepareFailover(ctx context.Context) error {
	for _, ns := range []string{haNamespace, haNamespace + "-writes"} {
		_, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	n, err := c.client.CoreV1().Nodes().Get(ctx, c.Node(haAgent), metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, img := range n.Status.Images {
		for _, name := range img.Names {
			if strings.Contains(name, "/pause:") {
				c.pauseImage = name
			}
		}
	}
	if c.pauseImage == "" {
		// Pods that never start are enough: only their creation and scheduling are timed.
		c.pauseImage = "localhost/ketch-bench/absent:0"
	}
	return nil
}

// deployment is round's Deployment: 0 replicas, its pods pinned to the agent, which is never
// killed.
func (c *haCluster) deployment(round int) *appsv1.Deployment {
	name := fmt.Sprintf("kill-%d", round)
	labels := map[string]string{"app": name}
	zero, grace := int32(0), int64(1)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: haNamespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &zero,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector:                  map[string]string{corev1.LabelHostname: c.Node(haAgent)},
					TerminationGracePeriodSeconds: &grace,
					Containers:                    []corev1.Container{{Name: "pause", Image: c.pauseImage, ImagePullPolicy: corev1.PullNever}},
				},
			},
		},
	}
}

// haWriter creates ConfigMaps one after another, each through the next server in turn (the
// next one again when a server does not answer), as the HA e2e test's writer, and records when
// each acknowledged attempt began and ended, and when attempts failed.
type haWriter struct {
	mu          sync.Mutex
	sent, acked []time.Time
	failed      []time.Time
	timedOut    []bool
	stop, done  chan struct{}
}

// The writers' client timeouts: the e2e test's, and a probe's that sees shorter outages.
const (
	writerTimeout = 2 * time.Second
	probeTimeout  = 500 * time.Millisecond
)

func (c *haCluster) startWriter(name string, timeout time.Duration) (*haWriter, error) {
	clients := make([]kubernetes.Interface, c.Servers)
	for i := range clients {
		var err error
		if clients[i], err = c.clientOf(i+1, timeout); err != nil {
			return nil, err
		}
	}
	w := &haWriter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for n, turn := 0, 0; ; n++ {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%05d", name, n)}, Data: map[string]string{"n": strconv.Itoa(n)}}
			for {
				select {
				case <-w.stop:
					return
				default:
				}
				turn++
				sent := time.Now()
				_, err := clients[turn%len(clients)].CoreV1().ConfigMaps(haNamespace+"-writes").Create(context.Background(), cm, metav1.CreateOptions{})
				w.mu.Lock()
				if err == nil || apierrors.IsAlreadyExists(err) {
					// AlreadyExists: an attempt that timed out was stored after all.
					w.sent, w.acked = append(w.sent, sent), append(w.acked, time.Now())
					w.mu.Unlock()
					break
				}
				w.failed, w.timedOut = append(w.failed, time.Now()), append(w.timedOut, isTimeout(err))
				w.mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return w, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err)
}

// haWrites is what a writer saw around a kill (see sections.WriteStats); failed and timedOut
// count the attempts that failed after the kill, and those of them that ran into the timeout.
type haWrites struct {
	back, gap               time.Duration
	acked, failed, timedOut int
}

// halt stops the writer and sums up its writes around killed.
func (w *haWriter) halt(killed time.Time) haWrites {
	close(w.stop)
	<-w.done
	var r haWrites
	r.back, r.gap, r.acked = sections.WriteStats(w.sent, w.acked, killed)
	for i, at := range w.failed {
		if at.After(killed) {
			r.failed++
			if w.timedOut[i] {
				r.timedOut++
			}
		}
	}
	return r
}

// failover kills the server whose kube-controller-manager leads, after making it etcd's leader
// too, measures until the cluster has recovered, and starts the server again.
func (c *haCluster) failover(ctx context.Context, round int, sz haSizes, logf func(string, ...any)) (sections.HAKill, error) {
	var k sections.HAKill
	victim, err := c.leaseHolder(ctx, c.client, "kube-controller-manager")
	if err != nil {
		return k, err
	}
	if victim == 0 {
		return k, errors.New("no server holds kube-controller-manager's lease")
	}
	k.Victim = c.Node(victim)
	if err := c.leadEtcd(ctx, victim, logf); err != nil {
		return k, err
	}
	if sched, err := c.leaseHolder(ctx, c.client, "kube-scheduler"); err == nil {
		k.SchedulerToo = sched == victim
	}
	var survivors []kubernetes.Interface
	for i := 1; i <= c.Servers; i++ {
		if i != victim {
			cl, err := c.clientOf(i, 2*time.Second)
			if err != nil {
				return k, err
			}
			survivors = append(survivors, cl)
		}
	}
	// A client that outlives the victim, for the rest of the round.
	var err2 error
	if c.client, err2 = c.clientOf(victim%c.Servers+1, 30*time.Second); err2 != nil {
		return k, err2
	}
	dep := c.deployment(round)
	if _, err := c.client.AppsV1().Deployments(haNamespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		return k, err
	}
	// The Deployment controller has seen it: scaling it is then the controllers' only work.
	if err := poll(ctx, time.Minute, func() (bool, error) {
		d, err := c.client.AppsV1().Deployments(haNamespace).Get(ctx, dep.Name, metav1.GetOptions{})
		return err == nil && d.Status.ObservedGeneration >= d.Generation, nil
	}); err != nil {
		return k, fmt.Errorf("deployment %s not observed by its controller: %w", dep.Name, err)
	}
	if lead, err := c.etcdLeader(ctx); err != nil {
		return k, err
	} else {
		k.EtcdLeader = lead == victim
	}
	w, err := c.startWriter(fmt.Sprintf("w%d", round), writerTimeout)
	if err != nil {
		return k, err
	}
	probe, err := c.startWriter(fmt.Sprintf("p%d", round), probeTimeout)
	if err != nil {
		w.halt(time.Now())
		return k, err
	}
	halt := func(killed time.Time) (haWrites, haWrites) { return w.halt(killed), probe.halt(killed) }
	time.Sleep(3 * time.Second)

	victimIP := c.NodeIP(victim)
	// SIGKILL straight to the server's process, so that the times count from the signal and not
	// from the script's start; `ketch-cluster.sh kill` then makes sure it is gone.
	pid, err := c.PID(victim)
	if err != nil {
		halt(time.Now())
		return k, err
	}
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil || !strings.Contains(string(cmdline), c.DataDir(victim)) {
		halt(time.Now())
		return k, fmt.Errorf("pid %d of %s's pid file is not its ketch process", pid, k.Victim)
	}
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		halt(killed)
		return k, fmt.Errorf("SIGKILL to %s (pid %d): %w", k.Victim, pid, err)
	}
	if err := c.KillNode(ctx, c.Node(victim)); err != nil {
		halt(killed)
		return k, err
	}
	logf("kill %d: killed %s (kube-controller-manager leader; etcd leader %v, kube-scheduler leader %v)", round, k.Victim, k.EtcdLeader, k.SchedulerToo)

	// Each observation polls through the survivors in turn until it sees its event.
	observe := func(what string, d *time.Duration, seen func(cl kubernetes.Interface) bool) bool {
		for turn := 0; time.Since(killed) < sz.limit && ctx.Err() == nil; turn++ {
			if seen(survivors[turn%len(survivors)]) {
				*d = time.Since(killed)
				logf("kill %d: %s after %s", round, what, report.Seconds(*d))
				return true
			}
			time.Sleep(100 * time.Millisecond)
		}
		logf("kill %d: %s not within %s", round, what, sz.limit)
		return false
	}
	var scaled bool
	var wg sync.WaitGroup
	wg.Go(func() {
		// Scale right after the kill, through whichever survivor takes it.
		patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, haReplicas)
		scaled = observe("the Deployment scaled", new(time.Duration), func(cl kubernetes.Interface) bool {
			_, err := cl.AppsV1().Deployments(haNamespace).Patch(ctx, dep.Name, types.MergePatchType, patch, metav1.PatchOptions{})
			return err == nil
		})
		if !scaled {
			return
		}
		sel := metav1.ListOptions{LabelSelector: "app=" + dep.Name}
		var podsCreated bool
		observe(fmt.Sprintf("%d pods created and scheduled", haReplicas), &k.PodsScheduled, func(cl kubernetes.Interface) bool {
			list, err := cl.CoreV1().Pods(haNamespace).List(ctx, sel)
			if err != nil {
				return false
			}
			var created, bound int
			for _, p := range list.Items {
				if p.DeletionTimestamp == nil {
					created++
					if p.Spec.NodeName != "" {
						bound++
					}
				}
			}
			if created >= haReplicas && !podsCreated {
				podsCreated, k.PodsCreated = true, time.Since(killed)
			}
			return bound >= haReplicas
		})
	})
	wg.Go(func() {
		observe("kube-controller-manager's lease taken", &k.LeaseTaken, func(cl kubernetes.Interface) bool {
			holder, err := c.leaseHolder(ctx, cl, "kube-controller-manager")
			return err == nil && holder != 0 && holder != victim
		})
	})
	wg.Go(func() {
		observe("gone from the kubernetes EndpointSlice", &k.SliceGone, func(cl kubernetes.Interface) bool {
			list, err := cl.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
			if err != nil || len(list.Items) == 0 {
				return false
			}
			for _, s := range list.Items {
				for _, ep := range s.Endpoints {
					if (ep.Conditions.Ready == nil || *ep.Conditions.Ready) && slices.Contains(ep.Addresses, victimIP) {
						return false
					}
				}
			}
			return true
		})
	})
	wg.Go(func() {
		observe("gone from the kubernetes Endpoints", &k.EndpointsGone, func(cl kubernetes.Interface) bool {
			ep, err := cl.CoreV1().Endpoints(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
			return err == nil && !slices.Contains(endpointIPs(ep), victimIP)
		})
	})
	wg.Wait()
	time.Sleep(2 * time.Second)
	wr, pr := halt(killed)
	k.WritesBack, k.WriteGap, k.Writes, k.Failed, k.TimedOut = wr.back, wr.gap, wr.acked, wr.failed, wr.timedOut
	k.ProbeBack, k.ProbeGap = pr.back, pr.gap
	logf("kill %d: a write sent after the kill acknowledged after %s (probe %s); longest pause %s (probe %s); %d writes, %d attempts failed (%d timed out)", round,
		report.Seconds(k.WritesBack), report.Seconds(k.ProbeBack), report.Seconds(k.WriteGap), report.Seconds(k.ProbeGap), k.Writes, k.Failed, k.TimedOut)
	if ctx.Err() != nil {
		return k, ctx.Err()
	}
	if !scaled {
		return k, errors.New("the Deployment could not be scaled")
	}

	// Back: started again, Ready by a heartbeat of the new run, every member healthy, an
	// endpoint again.
	previous := lifecycle.LastHeartbeat(ctx, c.client, k.Victim)
	started := time.Now()
	if err := c.StartNode(ctx, k.Victim); err != nil {
		return k, err
	}
	ready := lifecycle.ReadySince(started, previous)
	if err := poll(ctx, sz.backTimeout, func() (bool, error) {
		n, err := c.client.CoreV1().Nodes().Get(ctx, k.Victim, metav1.GetOptions{})
		if err != nil || !ready(n) {
			return false, nil
		}
		if healthy, _, err := c.etcdHealth(ctx); err != nil || healthy < c.Servers {
			return false, nil
		}
		ep, err := c.client.CoreV1().Endpoints(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
		return err == nil && slices.Contains(endpointIPs(ep), victimIP), nil
	}); err != nil {
		return k, fmt.Errorf("%s back after its start: %w", k.Victim, err)
	}
	k.Back = time.Since(started)
	logf("kill %d: %s back (node Ready, %d healthy members, an endpoint) %s after its start", round, k.Victim, c.Servers, report.Seconds(k.Back))
	if err := c.client.AppsV1().Deployments(haNamespace).Delete(ctx, dep.Name, metav1.DeleteOptions{}); err != nil {
		return k, err
	}
	// A controller leader again before the next kill looks for it.
	if err := poll(ctx, time.Minute, func() (bool, error) {
		holder, err := c.leaseHolder(ctx, c.client, "kube-controller-manager")
		return err == nil && holder != 0, nil
	}); err != nil {
		return k, err
	}
	time.Sleep(5 * time.Second)
	return k, nil
}

func endpointIPs(ep *corev1.Endpoints) []string {
	var ips []string
	for _, s := range ep.Subsets {
		for _, a := range s.Addresses {
			ips = append(ips, a.IP)
		}
	}
	return ips
}

// poll calls f every 200 ms until it returns true or an error, or limit passes.
func poll(ctx context.Context, limit time.Duration, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not within %s", limit)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
