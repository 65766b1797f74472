package podnet

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/ketch-k8s/ketch/internal/bench/report"
	"github.com/ketch-k8s/ketch/internal/bench/stats"
	"github.com/ketch-k8s/ketch/internal/harness"
)

const serverPod = "nb-server"

// StreamConfig is one cluster's pod-to-pod measurement.
type StreamConfig struct {
	Ketch   harness.Ketch // the binary and the cluster's kubeconfig, for kubectl exec
	Client  kubernetes.Interface
	Backend string // flannel's, for the report
	// ServerNode runs the server pod and one client pod; OtherNode the other client pod.
	ServerNode, OtherNode string
	Runs                  int // of each test from each client
	StreamSecs            int
	RRCount               int // round trips per request/response run
	Logf                  func(string, ...any)
}

// Path is one client pod's measurements against the server pod.
type Path struct {
	Pod, Node string
	Streams   []float64 // bytes/s, one per run
	RRP50     []time.Duration
	RRP99     []time.Duration
	MTU       int
}

// Result is one cluster's pod network.
type Result struct {
	Backend     string
	ServerNode  string
	Same, Cross Path
}

// Ratio is cross-node over same-node median stream throughput.
func (n Result) Ratio() float64 {
	same := stats.Median(n.Same.Streams)
	if same == 0 {
		return 0
	}
	return stats.Median(n.Cross.Streams) / same
}

// RunRatios are the cross-node / same-node stream rates run by run: the runs alternate between
// the clients, so each pair ran at nearly the same time.
func (n Result) RunRatios() []float64 {
	var r []float64
	for i := range min(len(n.Same.Streams), len(n.Cross.Streams)) {
		if n.Same.Streams[i] > 0 {
			r = append(r, n.Cross.Streams[i]/n.Same.Streams[i])
		}
	}
	return r
}

// Streams runs a netbench server pod on the server node and client pods on the same node and on
// the other node, and measures TCP stream throughput and 1-byte request/response latency from
// each client to the server's pod IP. Runs alternate between the two clients so that drift in
// the machine's speed hits both alike. The image must be on both nodes.
func Streams(ctx context.Context, cfg StreamConfig) (Result, error) {
	res := Result{Backend: cfg.Backend, ServerNode: cfg.ServerNode,
		Same:  Path{Pod: "nb-same", Node: cfg.ServerNode},
		Cross: Path{Pod: "nb-cross", Node: cfg.OtherNode}}
	ips, err := StartPods(ctx, cfg.Client,
		Pod(serverPod, res.ServerNode, "server"),
		Pod(res.Same.Pod, res.Same.Node, "sleep"),
		Pod(res.Cross.Pod, res.Cross.Node, "sleep"))
	if err != nil {
		return res, err
	}
	serverIP := ips[serverPod]
	for _, p := range []*Path{&res.Same, &res.Cross} {
		out, err := netbench(ctx, cfg.Ketch, time.Minute, p.Pod, "mtu")
		if err != nil {
			return res, err
		}
		if p.MTU, err = strconv.Atoi(strings.TrimSpace(out)); err != nil {
			return res, fmt.Errorf("MTU of %s: %q", p.Pod, out)
		}
	}
	cfg.Logf("%s: server pod %s on %s; clients on %s (MTU %d) and %s (MTU %d)", cfg.Backend, serverIP, res.ServerNode,
		res.Same.Node, res.Same.MTU, res.Cross.Node, res.Cross.MTU)
	timeout := time.Duration(cfg.StreamSecs)*time.Second + time.Minute
	for r := range cfg.Runs {
		for _, p := range []*Path{&res.Same, &res.Cross} {
			var st struct {
				BytesPerSec float64 `json:"bytesPerSec"`
			}
			if err := client(ctx, cfg.Ketch, timeout, p.Pod, &st, "stream", serverIP, cfg.StreamSecs); err != nil {
				return res, err
			}
			var rr struct {
				P50us, P99us float64
			}
			if err := client(ctx, cfg.Ketch, timeout, p.Pod, &rr, "rr", serverIP, cfg.RRCount); err != nil {
				return res, err
			}
			p.Streams = append(p.Streams, st.BytesPerSec)
			p.RRP50 = append(p.RRP50, time.Duration(rr.P50us*float64(time.Microsecond)))
			p.RRP99 = append(p.RRP99, time.Duration(rr.P99us*float64(time.Microsecond)))
			cfg.Logf("%s run %d, %s → %s: stream %s, request/response p50 %s p99 %s", cfg.Backend, r+1, p.Node, res.ServerNode,
				report.BitRate(st.BytesPerSec), report.Duration(p.RRP50[r]), report.Duration(p.RRP99[r]))
		}
	}
	return res, nil
}

// netbench runs `netbench args...` in a netbench pod and returns what it printed.
func netbench(ctx context.Context, k harness.Ketch, timeout time.Duration, pod string, args ...string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return k.Kubectl(cctx, append([]string{"exec", "-n", Namespace, pod, "--", "/netbench"}, args...)...)
}

// client runs `netbench client MODE HOST N` in a client pod and decodes its JSON result.
func client(ctx context.Context, k harness.Ketch, timeout time.Duration, pod string, v any, mode, host string, n int) error {
	out, err := netbench(ctx, k, timeout, pod, "client", mode, host, strconv.Itoa(n))
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), v); err != nil {
		return fmt.Errorf("netbench client %s in %s printed %q: %w", mode, pod, out, err)
	}
	return nil
}
