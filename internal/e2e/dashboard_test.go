package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ketch-k8s/ketch/internal/harness"
	"github.com/ketch-k8s/ketch/internal/testutil"
)

const dashNS = "e2e-dash"

// dashWorkloads are what the browser test looks at: a pod whose annotation and log line carry
// HTML payloads, a ConfigMap to edit, and three LoadBalancer Services, the third of which
// clashes with the first on port 8091.
var dashWorkloads = `
apiVersion: v1
kind: Namespace
metadata: {name: ` + dashNS + `}
---
apiVersion: v1
kind: Pod
metadata:
  name: payload
  namespace: ` + dashNS + `
  annotations: {note: "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">"}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: localhost/e2e/echo:oci
    imagePullPolicy: Never
    command: [sh, -c, 'echo "<script>window.__xss=3</script><img src=x onerror=window.__xss=4>"; sleep 100000']
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: ` + dashNS + `}
data: {color: blue}
---
apiVersion: v1
kind: Service
metadata: {name: lb-one, namespace: ` + dashNS + `}
spec: {type: LoadBalancer, selector: {app: none}, ports: [{port: 8091, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: lb-two, namespace: ` + dashNS + `}
spec: {type: LoadBalancer, selector: {app: none}, ports: [{port: 8092, targetPort: 8080}]}
`

// lbClash comes after lb-one holds 8091.
var lbClash = `
apiVersion: v1
kind: Service
metadata: {name: lb-three, namespace: ` + dashNS + `}
spec: {type: LoadBalancer, selector: {app: none}, ports: [{port: 8091, targetPort: 8080}]}
`

// webDeployment is pasted into the dashboard's create page.
const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: ` + dashNS + `
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: localhost/e2e/echo:oci
        imagePullPolicy: Never
        command: [sh, -c, 'echo "web says hi from $(hostname)"; sleep 100000']
`

// browser is headless Chromium driven over the DevTools protocol.
type browser struct {
	t      *testing.T
	ctx    context.Context
	base   string
	shots  string // where screenshots go ("" for none)
	cancel func()
	net    *netLog
}

// netLog keeps the page's requests that failed on the network (not those the page canceled),
// which a failure reports: "Failed to fetch" in the page says nothing of which or why.
type netLog struct {
	mu     sync.Mutex
	urls   map[network.RequestID]string
	failed []string
}

func (l *netLog) event(ev any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		l.urls[e.RequestID] = e.Request.Method + " " + e.Request.URL
	case *network.EventLoadingFailed:
		if !e.Canceled {
			l.failed = append(l.failed, fmt.Sprintf("%s: %s", l.urls[e.RequestID], e.ErrorText))
		}
	}
}

func (l *netLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.failed, "\n")
}

// newBrowser starts Debian's Chromium with a new profile. It trusts the server's serving
// certificate by its key (--ignore-certificate-errors-spki-list), not every certificate.
func newBrowser(t *testing.T, bn *harness.BrowserNet, base, servingCert string) *browser {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("the dashboard test needs Debian's chromium (scripts/install-deps.sh installs it): %v", err)
	}
	spki, err := harness.SPKIHash(servingCert)
	if err != nil {
		t.Fatal(err)
	}
	opts := append(harness.ChromiumOptions(chromium, t.TempDir()), chromedp.Flag("ignore-certificate-errors-spki-list", spki), bn.Exec())
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	net := &netLog{urls: map[network.RequestID]string{}}
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf), chromedp.WithListener(net.event))
	if err := chromedp.Do(ctx); err != nil {
		cancelAlloc()
		t.Fatalf("starting chromium: %v", err)
	}
	b := &browser{t: t, ctx: ctx, base: base, cancel: func() { cancelCtx(); cancelAlloc() }, net: net}
	t.Cleanup(b.cancel)
	return b
}

// run runs actions with a timeout, failing the test with what the page said.
func (b *browser) run(what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

// fail ends the test with what the page shows.
func (b *browser) fail(what string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	text, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS("body")))
	b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
	b.t.Fatalf("%s: %v\nthe page says:\n%s\nrequests that failed on the network:\n%s", what, err, text, b.net)
}

// waitText waits until the element's text contains want.
func (b *browser) waitText(what, sel, want string, timeout time.Duration) {
	b.t.Helper()
	b.run(what, timeout, harness.PollJS(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.includes(%q); })()`, sel, want), 100*time.Millisecond))
}

// eval evaluates JavaScript in the page (awaiting a promise) and returns its value.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail("evaluating "+js, err)
	}
	return v
}

func (b *browser) goTo(hash string) {
	b.t.Helper()
	b.run("opening "+hash, 30*time.Second, chromedp.Navigate(b.base+hash), chromedp.WaitVisible(chromedp.ID("view")))
}

// paste gives the editor text as a user's paste does (a paste event with the text).
func (b *browser) paste(text string) {
	b.t.Helper()
	b.run("pasting", 30*time.Second, chromedp.WaitVisible(chromedp.CSS(".cm-content")), evalVoid(fmt.Sprintf(`(() => {
		const el = document.querySelector(".cm-content");
		el.focus();
		document.execCommand("selectAll");
		const dt = new DataTransfer();
		dt.setData("text/plain", %q);
		el.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
	})()`, text)))
}

// edit replaces the last occurrence of old in the editor as a user does: it selects it, then
// types the new text.
func (b *browser) edit(old, new string) {
	b.t.Helper()
	if !eval[bool](b, fmt.Sprintf(`(() => {
		const root = document.querySelector(".cm-content");
		root.focus();
		const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
		let last = null;
		for (let n = walker.nextNode(); n; n = walker.nextNode()) if (n.data.includes(%q)) last = n;
		if (!last) return false;
		const i = last.data.lastIndexOf(%q);
		const r = document.createRange();
		r.setStart(last, i);
		r.setEnd(last, i + %d);
		getSelection().removeAllRanges();
		getSelection().addRange(r);
		return true;
	})()`, old, old, len(old))) {
		b.fail("finding "+old+" in the editor", errors.New("not there"))
	}
	b.run("typing "+new, 30*time.Second, chromedp.Sleep(200*time.Millisecond), typeText(new, false))
}

// typeText types text into the focused element as a keyboard's input does (Input.insertText:
// chromedp's key events would type each character twice into xterm.js), then, if enter, the
// Enter key.
func typeText(text string, enter bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, input.InsertText, input.InsertTextParams{Text: text}); err != nil {
			return err
		}
		if enter {
			_, err := chromedp.KeyEvent(kb.Enter)(ctx, t)
			return err
		}
		return nil
	})
}

// evalVoid evaluates JavaScript for its effect.
func evalVoid(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](js)(ctx, t)
		if errors.Is(err, chromedp.ErrJSUndefined) {
			return nil
		}
		return err
	})
}

func (b *browser) screenshot(name string) {
	if b.shots == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// in is the browser for the (sub)test t: its failures end t.
func (b *browser) in(t *testing.T) *browser {
	c := *b
	c.t = t
	return &c
}

func (b *browser) login(token string) {
	b.t.Helper()
	b.run("logging in", time.Minute, chromedp.Navigate(b.base), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SetValue(chromedp.ID("token"), token), chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("logout")))
}

// TestDashboard drives the dashboard in Chromium against a real server, as a user would: log in
// with the token `ketch dashboard` printed, watch the overview, create and scale a Deployment,
// read a pod's logs and type into its terminal, edit a ConfigMap (and meet a conflict), log in
// as a view-only ServiceAccount, see HTML payloads shown as text, read the LoadBalancer ports,
// and find the dashboard gone with --disable dashboard. DASHBOARD_SCREENSHOTS=dir keeps
// screenshots of the main pages (docs/dashboard/ holds the last ones).
func TestDashboard(t *testing.T) {
	testutil.NeedsRoot(t, "runs a ketch server and a network namespace")
	// The browser runs in a network namespace of its own (harness.BrowserNet): the node's pods
	// change the host's network, and Chromium drops its connections at every change.
	bn, err := harness.NewBrowserNet("e2edash", 77)
	if err != nil {
		harness.RemoveBrowserNet("e2edash") // left by a killed run
		if bn, err = harness.NewBrowserNet("e2edash", 77); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if err := bn.Close(); err != nil {
			t.Error(err)
		}
	})
	s := newServer(t, "--node-name", "ketch-dash", "--tls-san", bn.HostIP)
	s.seedEchoImage()
	s.start()
	s.kubectl("-n", "kube-system", "rollout", "status", "deployment/ketch-dashboard", "--timeout=180s")
	// The front door can still say "does not answer yet" a moment after the rollout (the pod's
	// endpoint is not routed yet), and the login page does not reload by itself.
	eventually(t, time.Minute, "the dashboard answering through the front door", func() error {
		out, err := s.ketch("", "kubectl", "get", "--raw", "/dashboard/healthz")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	s.apply(dashWorkloads)

	out, err := s.ketch("", "dashboard", "--data-dir", s.dataDir, "--server", "https://"+bn.HostIP+":6443")
	if err != nil || !strings.Contains(out, "/dashboard/\n") {
		t.Fatalf("ketch dashboard: %v\n%s", err, out)
	}
	var url, token string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "URL:"); ok {
			url = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(l, "Token:"); ok {
			token = strings.TrimSpace(v)
		}
	}
	if url != "https://"+bn.HostIP+":6443/dashboard/" || token == "" {
		t.Fatalf("no URL (for --server) or token in:\n%s", out)
	}

	b := newBrowser(t, bn, url, filepath.Join(s.dataDir, "server", "tls", "serving-kube-apiserver.crt"))
	b.shots = os.Getenv("DASHBOARD_SCREENSHOTS")

	t.Run("bad token", func(t *testing.T) {
		b := b.in(t)
		b.run("a wrong token", time.Minute, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("token")),
			chromedp.SetValue(chromedp.ID("token"), "not-a-token"), chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)))
		b.waitText("the refusal", "#login-error", "the API refused the token", 30*time.Second)
	})

	b.login(token)
	t.Run("overview", func(t *testing.T) {
		b := b.in(t)
		b.waitText("the node Ready", `#overview-nodes tr[data-node="ketch-dash"]`, "Ready", time.Minute)
		// metrics-server answers after its second scrape; the overview polls every 10 s.
		b.run("the node's CPU and memory", 3*time.Minute, harness.PollJS(`(() => { const c = document.querySelector('#overview-nodes tr[data-node="ketch-dash"] td.cpu'); return !!c && /\d/.test(c.textContent) && !c.textContent.includes("n/a"); })()`, time.Second))
		b.screenshot("overview")
	})

	t.Run("create and scale", func(t *testing.T) {
		b := b.in(t)
		b.goTo("#/create")
		b.paste(webDeployment)
		b.run("create", 30*time.Second, chromedp.Click(chromedp.CSS(`button[data-action="create"]`)))
		b.waitText("created", "ul.results", "created in "+dashNS, 30*time.Second)
		b.screenshot("create")
		b.goTo("#/obj/apps/deployments/" + dashNS + "/web")
		b.run("scale to 3", 30*time.Second, chromedp.WaitVisible(chromedp.CSS("input.replicas")),
			chromedp.SetValue(chromedp.CSS("input.replicas"), "3"), chromedp.Click(chromedp.CSS(`button[data-action="scale"]`)))
		b.waitText("scaled", "p.message", "Scaled to 3", 30*time.Second)
		b.goTo("#/list/core/pods")
		start := time.Now()
		b.run("three web pods listed live", time.Minute, harness.PollJS(`document.querySelectorAll('table.list tr[data-name^="web-"]').length === 3`, 100*time.Millisecond))
		t.Logf("the three pods were listed %.1f s after the list opened", time.Since(start).Seconds())
		b.screenshot("pods")
	})

	t.Run("logs and terminal", func(t *testing.T) {
		b := b.in(t)
		s.kubectl("-n", dashNS, "wait", "pod/payload", "--for=condition=Ready", "--timeout=120s")
		b.goTo("#/obj/core/pods/" + dashNS + "/payload/logs")
		b.waitText("the log line", "pre.logs", "<script>window.__xss=3</script>", time.Minute)
		b.screenshot("logs")
		b.goTo("#/obj/core/pods/" + dashNS + "/payload/terminal")
		b.waitText("connected", ".term-status", "connected", time.Minute)
		b.run("typing", 30*time.Second, chromedp.Click(chromedp.CSS(".xterm")), chromedp.Focus(chromedp.CSS(".xterm-helper-textarea")), typeText("echo hel''lo", true))
		b.waitText("hello read back", ".xterm-rows", "hello", 30*time.Second)
		b.screenshot("terminal")
	})

	t.Run("payloads are text", func(t *testing.T) {
		b := b.in(t)
		b.goTo("#/obj/core/pods/" + dashNS + "/payload")
		b.waitText("the annotation", ".cm-content", "window.__xss=1", 30*time.Second)
		if !eval[bool](b, `(() => window.__xss === undefined && !document.querySelector('img[onerror]') && ![...document.scripts].some(s => s.textContent.includes("__xss")))()`) {
			t.Errorf("a payload ran or became markup")
		}
	})

	t.Run("edit and conflict", func(t *testing.T) {
		b := b.in(t)
		b.goTo("#/obj/core/configmaps/" + dashNS + "/settings")
		b.waitText("the YAML", ".cm-content", "color: blue", 30*time.Second)
		b.edit("blue", "green")
		b.run("apply", 30*time.Second, chromedp.Click(chromedp.CSS("button.primary")))
		b.waitText("applied", "p.message", "Applied", 30*time.Second)
		if got := strings.TrimSpace(s.kubectl("-n", dashNS, "get", "configmap", "settings", "-o", "jsonpath={.data.color}")); got != "green" {
			t.Errorf("kubectl sees color %q after the dashboard's edit, want green", got)
		}
		// kubectl changes it while the page holds the old version.
		s.kubectl("-n", dashNS, "patch", "configmap", "settings", "-p", `{"data":{"color":"red"}}`)
		b.edit("green", "yellow")
		b.run("apply over a newer version", 30*time.Second, chromedp.Click(chromedp.CSS("button.primary")))
		b.waitText("the conflict", "p.message", "Conflict", 30*time.Second)
		b.screenshot("conflict")
		if got := strings.TrimSpace(s.kubectl("-n", dashNS, "get", "configmap", "settings", "-o", "jsonpath={.data.color}")); got != "red" {
			t.Errorf("after the conflict kubectl sees color %q, want kubectl's red kept", got)
		}
	})

	t.Run("loadbalancer ports", func(t *testing.T) {
		b := b.in(t)
		eventually(t, time.Minute, "lb-one and lb-two served", func() error {
			for _, n := range []string{"lb-one", "lb-two"} {
				svc, err := s.client.CoreV1().Services(dashNS).Get(context.Background(), n, metav1.GetOptions{})
				if err != nil || len(svc.Status.LoadBalancer.Ingress) == 0 {
					return fmt.Errorf("%s not served yet (%v)", n, err)
				}
			}
			return nil
		})
		s.apply(lbClash)
		b.goTo("#/ketch/loadbalancers")
		b.waitText("lb-two's port", "#lb-ports", dashNS+"/lb-two", 30*time.Second)
		b.waitText("the clash", "#lb-clashes", dashNS+"/lb-three", time.Minute)
		b.waitText("lb-one's port", "#lb-ports", dashNS+"/lb-one", 5*time.Second)
		b.screenshot("loadbalancers")
	})

	t.Run("view-only user", func(t *testing.T) {
		b := b.in(t)
		s.kubectl("-n", dashNS, "create", "serviceaccount", "viewer")
		s.kubectl("-n", dashNS, "create", "rolebinding", "viewer", "--clusterrole=view", "--serviceaccount="+dashNS+":viewer")
		viewer := strings.TrimSpace(s.kubectl("-n", dashNS, "create", "token", "viewer"))
		b.run("logout", 30*time.Second, chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("token")))
		b.login(viewer)
		b.waitText("its namespace", "#namespace", dashNS, 30*time.Second)
		b.run("navigation", 30*time.Second, chromedp.WaitVisible(chromedp.CSS("#resources a")))
		navText := eval[string](b, `document.querySelector("nav").textContent`)
		if strings.Contains(navText, "Node") || strings.Contains(navText, "Namespace") || !strings.Contains(navText, "Pod") {
			t.Errorf("a viewer of one namespace sees in the navigation:\n%s", navText)
		}
		b.goTo("#/obj/core/pods/" + dashNS + "/payload")
		b.waitText("the YAML", ".cm-content", "payload", 30*time.Second)
		time.Sleep(time.Second) // the access reviews that decide the buttons
		if buttons := eval[int](b, `[...document.querySelectorAll('.actions button, button.primary')].filter(b => !b.hidden).length`); buttons != 0 {
			t.Errorf("a viewer sees %d action buttons", buttons)
		}
		forged := eval[string](b, `(async () => {
			const s = await (await fetch("api/session")).json();
			const r = await fetch("k8s/api/v1/namespaces/`+dashNS+`/configmaps", { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": s.csrf },
				body: JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "forged" } }) });
			return r.status + " " + (await r.json()).message;
		})()`)
		if !strings.HasPrefix(forged, "403 ") || !strings.Contains(forged, "cannot create resource \"configmaps\"") {
			t.Errorf("a forged POST as the viewer: %s", forged)
		}
		b.screenshot("viewer")
		// Back to the admin, for what follows.
		b.run("logout", 30*time.Second, chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("token")))
		b.login(token)
	})

	t.Run("secret values hidden until asked", func(t *testing.T) {
		b := b.in(t)
		s.kubectl("-n", dashNS, "create", "secret", "generic", "db", "--from-literal=password=s3cr3t-value")
		b.goTo("#/obj/core/secrets/" + dashNS + "/db")
		b.waitText("the YAML", ".cm-content", "(hidden: open the Data tab)", 30*time.Second)
		if eval[bool](b, `document.body.textContent.includes("s3cr3t-value") || document.body.textContent.includes(btoa("s3cr3t-value"))`) {
			t.Error("the secret's value is on the page before it was asked for")
		}
		b.run("the Data tab", 30*time.Second, chromedp.Click(chromedp.CSS(`button[data-tab="data"]`)), chromedp.Click(chromedp.CSS("table.secret button")))
		b.waitText("the value", "table.secret", "s3cr3t-value", 10*time.Second)
	})

	t.Run("actions", func(t *testing.T) {
		b := b.in(t)
		b.goTo("#/obj/core/nodes/_/ketch-dash")
		b.run("cordon", 30*time.Second, chromedp.Click(chromedp.CSS(`button[data-action="cordon"]`)))
		b.waitText("cordoned", "p.message", "Cordoned.", 30*time.Second)
		if got := s.kubectl("get", "node", "ketch-dash", "-o", "jsonpath={.spec.unschedulable}"); got != "true" {
			t.Errorf("after cordon, spec.unschedulable is %q", got)
		}
		b.run("uncordon", 30*time.Second, chromedp.Click(chromedp.CSS(`button[data-action="uncordon"]`)))
		b.waitText("uncordoned", "p.message", "Uncordoned.", 30*time.Second)
		if got := s.kubectl("get", "node", "ketch-dash", "-o", "jsonpath={.spec.unschedulable}"); got != "" {
			t.Errorf("after uncordon, spec.unschedulable is %q", got)
		}

		b.goTo("#/obj/apps/deployments/" + dashNS + "/web")
		b.run("restart", 30*time.Second, chromedp.Click(chromedp.CSS(`button[data-action="restart"]`)))
		b.waitText("restarted", "p.message", "Rollout restarted.", 30*time.Second)
		if got := s.kubectl("-n", dashNS, "get", "deployment", "web", "-o", `jsonpath={.spec.template.metadata.annotations.kubectl\.kubernetes\.io/restartedAt}`); got == "" {
			t.Error("no restartedAt annotation after the restart")
		}

		s.apply(`
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: ` + dashNS + `}
spec:
  schedule: "0 3 1 1 *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - {name: job, image: localhost/e2e/echo:oci, imagePullPolicy: Never, command: [echo, done]}
`)
		b.goTo("#/obj/batch/cronjobs/" + dashNS + "/nightly")
		b.run("suspend", 30*time.Second, chromedp.Click(chromedp.CSS(`button[data-action="suspend"]`)))
		b.waitText("suspended", "p.message", "Suspended.", 30*time.Second)
		if got := s.kubectl("-n", dashNS, "get", "cronjob", "nightly", "-o", "jsonpath={.spec.suspend}"); got != "true" {
			t.Errorf("after suspend, spec.suspend is %q", got)
		}
		b.run("resume", 30*time.Second, chromedp.Click(chromedp.CSS(`button[data-action="resume"]`)))
		b.waitText("resumed", "p.message", "Resumed.", 30*time.Second)
		if got := s.kubectl("-n", dashNS, "get", "cronjob", "nightly", "-o", "jsonpath={.spec.suspend}"); got != "false" {
			t.Errorf("after resume, spec.suspend is %q", got)
		}
		b.run("trigger", 30*time.Second, chromedp.Click(chromedp.CSS(`button[data-action="trigger"]`)))
		b.waitText("triggered", "p.message", "created.", 30*time.Second)
		if got := s.kubectl("-n", dashNS, "get", "jobs", "-o", "jsonpath={.items[*].metadata.ownerReferences[0].name}"); !strings.Contains(got, "nightly") {
			t.Errorf("no Job of CronJob nightly: %q", got)
		}

		b.goTo("#/obj/core/configmaps/" + dashNS + "/settings")
		b.run("delete", 30*time.Second, chromedp.Click(chromedp.CSS(`button[data-action="delete"]`)), chromedp.Click(chromedp.CSS(`button[data-action="delete-confirm"]`)))
		b.run("back at the list", 30*time.Second, harness.PollJS(`location.hash === "#/list/core/configmaps"`, 100*time.Millisecond))
		eventually(t, 30*time.Second, "the ConfigMap deleted", func() error {
			if _, err := s.client.CoreV1().ConfigMaps(dashNS).Get(context.Background(), "settings", metav1.GetOptions{}); err == nil {
				return errors.New("still there")
			}
			return nil
		})
	})

	t.Run("a paste with a bad document creates nothing", func(t *testing.T) {
		b := b.in(t)
		b.goTo("#/create")
		b.paste("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: good-one, namespace: " + dashNS + "}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name, namespace: " + dashNS + "}\n")
		b.run("create", 30*time.Second, chromedp.Click(chromedp.CSS(`button[data-action="create"]`)))
		b.waitText("the refusal", "ul.results", "Nothing was created", 30*time.Second)
		b.waitText("which failed", "ul.results", "document 2 (ConfigMap Bad_Name): refused", 5*time.Second)
		if _, err := s.client.CoreV1().ConfigMaps(dashNS).Get(context.Background(), "good-one", metav1.GetOptions{}); err == nil {
			t.Error("the good document of a refused paste was created")
		}
		b.goTo("#/create")
		b.paste("kind: [unclosed")
		b.run("create", 30*time.Second, chromedp.Click(chromedp.CSS(`button[data-action="create"]`)))
		b.waitText("the parse error", "ul.results", "does not parse", 30*time.Second)
	})

	t.Run("ketch pages", func(t *testing.T) {
		b := b.in(t)
		b.goTo("#/ketch/manifests")
		b.waitText("the manifests", "#manifests", "coredns.yaml", 30*time.Second)
		b.waitText("applied", "#manifests", "applied", 5*time.Second)
		b.screenshot("manifests")
		b.goTo("#/ketch/images")
		b.waitText("the addon image", "#images", "localhost/ketch/addons", 30*time.Second)
		b.goTo("#/ketch/join")
		b.run("a join token", 30*time.Second, chromedp.Click(chromedp.CSS(`button[data-action="join-token"]`)))
		b.waitText("the join command", "pre.join", "ketch agent --server "+strings.TrimSuffix(url, "/dashboard/")+" --token K10", 30*time.Second)
		cmd := eval[string](b, `document.querySelector("pre.join").textContent`)
		caPEM, err := os.ReadFile(filepath.Join(s.dataDir, "server", "tls", "server-ca.crt"))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(caPEM)
		if !strings.Contains(cmd, fmt.Sprintf("K10%x::", sum)) {
			t.Errorf("the join command does not pin the server CA %x: %s", sum, cmd)
		}
		if out := s.kubectl("-n", "kube-system", "get", "secrets", "--field-selector", "type=bootstrap.kubernetes.io/token", "-o", "name"); !strings.Contains(out, "bootstrap-token-") {
			t.Errorf("no agent token Secret: %s", out)
		}
		b.screenshot("join")
		b.goTo("#/metrics")
		b.waitText("samples", "#metrics-note", "samples", time.Minute)
		b.waitText("pods by memory", "#top-pods", "kube-system/", time.Minute)
		b.screenshot("metrics")
	})

	t.Run("local-path volumes", func(t *testing.T) {
		b := b.in(t)
		s.apply(`
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: ` + dashNS + `}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 64Mi}}}
---
apiVersion: v1
kind: Pod
metadata: {name: vol-user, namespace: ` + dashNS + `}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: localhost/e2e/echo:oci
    imagePullPolicy: Never
    command: [sh, -c, 'seq 1 100000 > /data/numbers; sleep 100000']
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
`)
		s.kubectl("-n", dashNS, "wait", "pod/vol-user", "--for=condition=Ready", "--timeout=120s")
		b.goTo("#/ketch/volumes")
		b.waitText("the volume", "#volumes", dashNS+"/data", time.Minute)
		b.waitText("its node", "#volumes", "ketch-dash", 5*time.Second)
		b.screenshot("volumes")
	})

	t.Run("disabled", func(t *testing.T) {
		s.stop()
		s.args = append(s.args, "--disable", "dashboard")
		s.start()
		eventually(t, time.Minute, "the dashboard removed", func() error {
			if _, err := s.client.AppsV1().Deployments("kube-system").Get(context.Background(), "ketch-dashboard", metav1.GetOptions{}); err == nil {
				return fmt.Errorf("Deployment ketch-dashboard is still there")
			}
			return nil
		})
		caPEM, err := os.ReadFile(filepath.Join(s.dataDir, "server", "tls", "server-ca.crt"))
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body := make([]byte, 512)
		n, _ := resp.Body.Read(body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body[:n]), "the dashboard is disabled") {
			t.Errorf("GET %s with the dashboard disabled: %s %s", url, resp.Status, body[:n])
		}
	})
}
