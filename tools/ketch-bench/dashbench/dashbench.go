// Package dashbench measures the dashboard as its users meet it, through the server's front
// door: when it first answers after the server's exec, how long the pod list takes to start
// arriving with many pods in the cluster, and how long a new pod takes to show in a browser's
// open pod list.
package dashbench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ketch-k8s/ketch/internal/harness"
)

// Namespace holds the bench's pods.
const Namespace = "bench-dashboard"

// Options are what the bench needs of a running server.
type Options struct {
	Ketch       harness.Ketch
	DataDir     string
	Server      string // https://host:port of the front door
	ServerCA    string // the server CA's file, which signs the front door's certificate
	ServingCert string // the front door's certificate, which the browser trusts by its key
	Client      kubernetes.Interface
	Pods        int // Pending pods to create
	Requests    int // pod list requests to time
	Changes     int // new pods to watch appear in the page
	Logf        func(string, ...any)
}

// Result is what the bench measured.
type Result struct {
	Created   int             // Pending pods the bench made
	Pods      int             // pods in the cluster during the measurements
	FirstByte []time.Duration // GET of all pods through the dashboard: request sent → first byte
	Whole     []time.Duration // and → last byte
	ListBytes int             // size of one pod list
	Visible   []time.Duration // new pod created (the API's answer) → its row in the open list
}

// HTTPClient trusts the server CA.
func HTTPClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", caFile)
	}
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Jar: jar, Timeout: 30 * time.Second}, nil
}

// WaitAnswering polls the front door's /dashboard/healthz every 100 ms until it answers 200 and
// returns the time since started (the server's exec).
func WaitAnswering(ctx context.Context, c *http.Client, server string, started time.Time, done <-chan struct{}) (time.Duration, error) {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, server+"/dashboard/healthz", nil)
		resp, err := c.Do(req)
		at := time.Since(started)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return at, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("the dashboard did not answer at %s/dashboard/: %w (last: %v)", server, ctx.Err(), err)
		case <-done:
			return 0, fmt.Errorf("the server exited before the dashboard answered")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Measure fills the cluster with Pending pods and times the dashboard with them.
func Measure(ctx context.Context, o Options) (Result, error) {
	res := Result{}
	token, err := o.Ketch.Run(ctx, "", "dashboard", "--data-dir", o.DataDir, "--token-only")
	if err != nil {
		return res, fmt.Errorf("ketch dashboard: %v: %s", err, token)
	}
	token = strings.TrimSpace(token)
	c, err := HTTPClient(o.ServerCA)
	if err != nil {
		return res, err
	}
	body, _ := json.Marshal(map[string]string{"token": token})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, o.Server+"/dashboard/api/login", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return res, fmt.Errorf("logging in: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("logging in: %s", resp.Status)
	}

	if err := makePods(ctx, o.Client, o.Pods, o.Logf); err != nil {
		return res, err
	}
	res.Created = o.Pods
	all, err := o.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return res, err
	}
	res.Pods = len(all.Items)

	// The pod list through the front door, the dashboard and the API, as the page asks for it.
	for i := 0; i < o.Requests+3; i++ {
		var first time.Time
		trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { first = time.Now() }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, o.Server+"/dashboard/k8s/api/v1/pods?limit=5000", nil)
		req.Header.Set("Accept", "application/json")
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			return res, fmt.Errorf("listing pods through the dashboard: %w", err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		end := time.Now()
		if err != nil || resp.StatusCode != http.StatusOK {
			return res, fmt.Errorf("listing pods through the dashboard: %s, %v", resp.Status, err)
		}
		if i < 3 {
			continue // warm-up: connections, the API's caches
		}
		res.FirstByte = append(res.FirstByte, first.Sub(start))
		res.Whole = append(res.Whole, end.Sub(start))
		res.ListBytes = int(n)
	}

	res.Visible, err = visible(ctx, o, token)
	return res, err
}

// makePods creates n pods that no node can take (their node selector matches none), so they
// stay Pending: objects for the lists, no containers.
func makePods(ctx context.Context, cs kubernetes.Interface, n int, logf func(string, ...any)) error {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("namespace %s: %w", Namespace, err)
	}
	start := time.Now()
	work := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if _, err := cs.CoreV1().Pods(Namespace).Create(ctx, pendingPod(fmt.Sprintf("pending-%04d", i)), metav1.CreateOptions{}); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("creating pods: %w", err)
	default:
	}
	logf("created %d Pending pods in %.1fs", n, time.Since(start).Seconds())
	return nil
}

func pendingPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "bench-dashboard"}},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"bench.ketch.io/none": "true"},
			Containers:   []corev1.Container{{Name: "main", Image: "localhost/bench/none:1", ImagePullPolicy: corev1.PullNever}},
		},
	}
}

// visible opens the pod list in Chromium and times each new pod from the API's answer to its
// row in the page.
func visible(ctx context.Context, o Options, token string) ([]time.Duration, error) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		return nil, fmt.Errorf("the dashboard bench needs Debian's chromium: %w", err)
	}
	spki, err := harness.SPKIHash(o.ServingCert)
	if err != nil {
		return nil, err
	}
	profile, err := os.MkdirTemp("", "ketch-bench-chromium-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(profile)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(harness.ChromiumOptions(chromium, profile), chromedp.Flag("ignore-certificate-errors-spki-list", spki))...)
	defer cancelAlloc()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(bctx); err != nil {
		return nil, fmt.Errorf("starting chromium: %w", err)
	}
	run := func(timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) error {
		c, cancel := context.WithTimeout(bctx, timeout)
		defer cancel()
		return chromedp.Do(c, steps...)
	}
	page := o.Server + "/dashboard/"
	if err := run(time.Minute, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("token")), chromedp.SetValue(chromedp.ID("token"), token),
		chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)), chromedp.WaitVisible(chromedp.ID("logout")),
		chromedp.Navigate(page+"#/list/core/pods"),
		harness.PollJS(fmt.Sprintf(`document.querySelectorAll("table.list tbody tr").length >= %d`, o.Pods), 100*time.Millisecond)); err != nil {
		return nil, fmt.Errorf("opening the pod list: %w", err)
	}
	var out []time.Duration
	for i := range o.Changes {
		name := fmt.Sprintf("new-%02d", i)
		if _, err := o.Client.CoreV1().Pods(Namespace).Create(ctx, pendingPod(name), metav1.CreateOptions{}); err != nil {
			return nil, err
		}
		created := time.Now()
		if err := run(30*time.Second, harness.PollJS(fmt.Sprintf(`!!document.querySelector('table.list tr[data-name=%q]')`, name), 5*time.Millisecond)); err != nil {
			return nil, fmt.Errorf("pod %s did not show in the list: %w", name, err)
		}
		out = append(out, time.Since(created))
	}
	return out, nil
}

// Cleanup deletes the bench's namespace.
func Cleanup(ctx context.Context, cs kubernetes.Interface) error {
	err := cs.CoreV1().Namespaces().Delete(ctx, Namespace, metav1.DeleteOptions{})
	if err != nil && !strings.Contains(err.Error(), "not found") {
		return err
	}
	return nil
}
