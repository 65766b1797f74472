package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
)

// history keeps the last hour of CPU and memory of every node and pod, sampled from
// metrics-server every interval with the token of a logged-in user whom the API lets read it:
// the dashboard's own ServiceAccount has no rights, so with nobody logged in there is no
// sample. Each value is a float32 (a thousand pods for an hour: about 3 MB).
type history struct {
	keep     int
	interval time.Duration

	mu    sync.Mutex
	times []int64 // unix seconds of the samples, oldest first
	nodes map[string]*series
	pods  map[string]*series // namespace/name
}

// series are a node's or pod's values, one per sample time; NaN where it had none.
type series struct{ cpu, memory []float32 }

func newHistory(interval, span time.Duration) *history {
	return &history{keep: int(span / interval), interval: interval, nodes: map[string]*series{}, pods: map[string]*series{}}
}

// metricsList is the part of a NodeMetricsList or PodMetricsList the history keeps.
type metricsList struct {
	Items []struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Usage      map[string]resource.Quantity `json:"usage"`
		Containers []struct {
			Usage map[string]resource.Quantity `json:"usage"`
		} `json:"containers"`
	} `json:"items"`
}

// add records one sample of node and pod usage taken at t.
func (h *history) add(t time.Time, nodes, pods *metricsList) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.times = append(h.times, t.Unix())
	n := len(h.times)
	put := func(m map[string]*series, key string, cpu, mem float64) {
		s := m[key]
		if s == nil {
			s = &series{}
			m[key] = s
		}
		for len(s.cpu) < n-1 {
			s.cpu, s.memory = append(s.cpu, float32(math.NaN())), append(s.memory, float32(math.NaN()))
		}
		s.cpu, s.memory = append(s.cpu, float32(cpu)), append(s.memory, float32(mem))
	}
	for _, i := range nodes.Items {
		put(h.nodes, i.Metadata.Name, quantity(i.Usage["cpu"]), quantity(i.Usage["memory"]))
	}
	for _, i := range pods.Items {
		var cpu, mem float64
		for _, c := range i.Containers {
			cpu += quantity(c.Usage["cpu"])
			mem += quantity(c.Usage["memory"])
		}
		put(h.pods, i.Metadata.Namespace+"/"+i.Metadata.Name, cpu, mem)
	}
	// Every series as long as the times; drop the oldest sample beyond the span, and whoever
	// has had no value in the whole span.
	drop := max(0, n-h.keep)
	h.times = h.times[drop:]
	for _, m := range []map[string]*series{h.nodes, h.pods} {
		for key, s := range m {
			for len(s.cpu) < n {
				s.cpu, s.memory = append(s.cpu, float32(math.NaN())), append(s.memory, float32(math.NaN()))
			}
			s.cpu, s.memory = s.cpu[drop:], s.memory[drop:]
			if allNaN(s.memory) {
				delete(m, key)
			}
		}
	}
}

func quantity(q resource.Quantity) float64 { return q.AsApproximateFloat64() }

func allNaN(v []float32) bool {
	for _, x := range v {
		if !math.IsNaN(float64(x)) {
			return false
		}
	}
	return true
}

// seriesJSON is a series as the page reads it: null where there was no sample.
type seriesJSON struct {
	CPU    []*float32 `json:"cpu"`
	Memory []*float32 `json:"memory"`
}

func toJSON(v []float32) []*float32 {
	out := make([]*float32, len(v))
	for i := range v {
		if !math.IsNaN(float64(v[i])) {
			out[i] = &v[i]
		}
	}
	return out
}

// historyJSON is GET api/metrics: the sample times and, for what the user may read, the series.
type historyJSON struct {
	Times []int64               `json:"times"`
	Nodes map[string]seriesJSON `json:"nodes"`
	Pods  map[string]seriesJSON `json:"pods"`
}

func (h *history) snapshot(withNodes, withPods bool) historyJSON {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := historyJSON{Times: append([]int64(nil), h.times...), Nodes: map[string]seriesJSON{}, Pods: map[string]seriesJSON{}}
	copySeries := func(dst map[string]seriesJSON, src map[string]*series) {
		for k, s := range src {
			dst[k] = seriesJSON{CPU: toJSON(append([]float32(nil), s.cpu...)), Memory: toJSON(append([]float32(nil), s.memory...))}
		}
	}
	if withNodes {
		copySeries(out.Nodes, h.nodes)
	}
	if withPods {
		copySeries(out.Pods, h.pods)
	}
	return out
}

const (
	nodeMetricsPath = "/apis/metrics.k8s.io/v1beta1/nodes"
	podMetricsPath  = "/apis/metrics.k8s.io/v1beta1/pods"
)

// sample takes a sample every interval until ctx ends.
func (s *Server) sample(ctx context.Context) {
	wait.UntilWithContext(ctx, s.sampleOnce, s.history.interval)
}

// sampleOnce reads the metrics with the token of the most recent session the API lets read
// them; with no such session there is no sample.
func (s *Server) sampleOnce(ctx context.Context) {
	for _, token := range s.sessions.tokens() {
		var nodes, pods metricsList
		if err := s.getJSON(ctx, token, nodeMetricsPath, "", &nodes); err != nil {
			klog.V(2).InfoS("No metrics with a session's token", "err", err)
			continue
		}
		// Pod metrics may be refused to a user who may read the nodes': the nodes still count.
		_ = s.getJSON(ctx, token, podMetricsPath, "", &pods)
		s.history.add(time.Now(), &nodes, &pods)
		break
	}
}

// getJSON GETs an API path (with a query, or "") with a token and decodes the answer.
func (s *Server) getJSON(ctx context.Context, token, path, query string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u := s.opts.APIServer.JoinPath(path)
	u.RawQuery = query
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// metrics serves the history to a user whom the API lets read the metrics now: the nodes' if
// they may list node metrics, the pods' if they may list pod metrics in every namespace.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request, _ string, ss *session) {
	may := func(path string) bool {
		var l metricsList
		return s.getJSON(r.Context(), ss.token, path, "limit=1", &l) == nil
	}
	nodes, pods := may(nodeMetricsPath), may(podMetricsPath)
	if !nodes && !pods {
		writeError(w, http.StatusForbidden, "the API does not let you read the metrics (list nodes or pods in metrics.k8s.io), or metrics-server is not ready")
		return
	}
	writeJSON(w, s.history.snapshot(nodes, pods))
}
