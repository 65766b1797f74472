package dashboard

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ketch-k8s/ketch/internal/testutil/apiserver"
)

var api *apiserver.Server

func TestMain(m *testing.M) {
	tb := apiserver.NewMainTB("dashboard")
	api = apiserver.Start(tb)
	os.Exit(tb.Finish(m.Run()))
}

// browser is a client of the dashboard as a page is: it keeps the session cookie and sends the
// dashboard's own origin.
type browser struct {
	t      *testing.T
	base   string
	client *http.Client
	csrf   string
}

func newBrowser(t *testing.T, dash *httptest.Server) *browser {
	jar, _ := cookiejar.New(nil)
	c := dash.Client()
	c.Jar = jar
	return &browser{t: t, base: dash.URL, client: c}
}

// do sends a request from the dashboard's page (or, with origin, from another site's) and
// returns the status and body.
func (b *browser) do(method, path, body string, header map[string]string) (int, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	if method != http.MethodGet {
		req.Header.Set("Origin", b.base)
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func (b *browser) login(token string) (int, string) {
	b.t.Helper()
	body, _ := json.Marshal(map[string]string{"token": token})
	code, out := b.do(http.MethodPost, pathLogin, string(body), nil)
	if code == http.StatusOK {
		var s sessionInfo
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			b.t.Fatal(err)
		}
		b.csrf = s.CSRF
	}
	return code, out
}

func startDashboard(t *testing.T, ttl time.Duration) (*Server, *httptest.Server) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(api.ServingCert)
	u, err := url.Parse(api.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(Options{APIServer: u, APICAs: pool, SessionTTL: ttl, Assets: Assets()})
	dash := httptest.NewTLSServer(s)
	t.Cleanup(dash.Close)
	return s, dash
}

// serviceAccountToken makes a ServiceAccount in default and a token for it.
func serviceAccountToken(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := api.Client.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := api.Client.CoreV1().ServiceAccounts("default").CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// loggedIn starts a dashboard and logs a browser in with a new ServiceAccount's token.
func loggedIn(t *testing.T, account string) (*Server, *browser) {
	t.Helper()
	s, dash := startDashboard(t, time.Hour)
	b := newBrowser(t, dash)
	if code, out := b.login(serviceAccountToken(t, account)); code != http.StatusOK {
		t.Fatalf("login: %d %s", code, out)
	}
	return s, b
}

// TestLoginAndAPI: the page and its headers; a wrong token refused with a message; a good one
// starts a session whose cookie the page cannot read; API calls go out as the token's user;
// changes need the session's CSRF token and the dashboard's own origin; logout ends it.
func TestLoginAndAPI(t *testing.T) {
	_, dash := startDashboard(t, time.Hour)
	b := newBrowser(t, dash)
	token := serviceAccountToken(t, "alice")

	resp, err := b.client.Get(dash.URL + Prefix)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "<title>ketch dashboard</title>") {
		t.Fatalf("GET %s: %s\n%s", Prefix, resp.Status, page)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe-eval") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}

	if code, out := b.do(http.MethodGet, pathSession, "", nil); code != http.StatusUnauthorized || !strings.Contains(out, "not logged in") {
		t.Errorf("session before login: %d %s", code, out)
	}
	if code, out := b.login("not-a-token"); code != http.StatusUnauthorized || !strings.Contains(out, "the API refused the token") {
		t.Errorf("wrong token: %d %s", code, out)
	}
	if code, out := b.login(""); code != http.StatusBadRequest || !strings.Contains(out, "no token") {
		t.Errorf("no token: %d %s", code, out)
	}
	code, out := b.login(token)
	if code != http.StatusOK || !strings.Contains(out, `"user":"system:serviceaccount:default:alice"`) || strings.Contains(out, token) {
		t.Fatalf("login: %d %s", code, out)
	}
	u, _ := url.Parse(dash.URL + Prefix)
	cookies := b.client.Jar.Cookies(u)
	if len(cookies) != 1 || cookies[0].Value == token {
		t.Fatalf("cookies %v", cookies)
	}

	// The API sees the token's user.
	code, out = b.do(http.MethodPost, pathAPI+"apis/authentication.k8s.io/v1/selfsubjectreviews",
		`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`, map[string]string{headerCSRF: b.csrf})
	if code != http.StatusCreated || !strings.Contains(out, `"username":"system:serviceaccount:default:alice"`) {
		t.Errorf("the API's view of the user: %d %s", code, out)
	}

	cm := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"made-in-the-dashboard"},"data":{"a":"1"}}`
	path := pathAPI + "api/v1/namespaces/default/configmaps"
	if code, out := b.do(http.MethodPost, path, cm, nil); code != http.StatusForbidden || !strings.Contains(out, "CSRF") {
		t.Errorf("a change without the CSRF token: %d %s", code, out)
	}
	if code, out := b.do(http.MethodPost, path, cm, map[string]string{headerCSRF: b.csrf, "Origin": "https://evil.example"}); code != http.StatusForbidden {
		t.Errorf("a change from another origin: %d %s", code, out)
	}
	if _, err := api.Client.CoreV1().ConfigMaps("default").Get(context.Background(), "made-in-the-dashboard", metav1.GetOptions{}); err == nil {
		t.Fatal("a refused change reached the API")
	}
	if code, out := b.do(http.MethodPost, path, cm, map[string]string{headerCSRF: b.csrf}); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, out)
	}
	if _, err := api.Client.CoreV1().ConfigMaps("default").Get(context.Background(), "made-in-the-dashboard", metav1.GetOptions{}); err != nil {
		t.Errorf("the ConfigMap made through the dashboard: %v", err)
	}
	if code, out := b.do(http.MethodGet, path, "", nil); code != http.StatusOK || !strings.Contains(out, "made-in-the-dashboard") {
		t.Errorf("list: %d %s", code, out)
	}

	// Logout needs the CSRF token too, and ends the session.
	if code, _ := b.do(http.MethodPost, pathLogout, "", nil); code != http.StatusForbidden {
		t.Errorf("logout without the CSRF token: %d", code)
	}
	if code, _ := b.do(http.MethodPost, pathLogout, "", map[string]string{headerCSRF: b.csrf}); code != http.StatusNoContent {
		t.Errorf("logout: %d", code)
	}
	if code, _ := b.do(http.MethodGet, path, "", nil); code != http.StatusUnauthorized {
		t.Errorf("after logout: %d", code)
	}
}

// TestWatchStreams: a watch through the dashboard delivers a change as it happens.
func TestWatchStreams(t *testing.T) {
	_, b := loggedIn(t, "watcher")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.base+pathAPI+"api/v1/namespaces/kube-public/configmaps?watch=1&resourceVersion=0", nil)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: %s", resp.Status)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		api.Client.CoreV1().ConfigMaps("kube-public").Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "watched"}}, metav1.CreateOptions{})
	}()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"name":"watched"`) {
			return
		}
	}
	t.Fatalf("no event for the new ConfigMap: %v", sc.Err())
}

// TestSessionExpires: an expired session is gone, its token with it.
func TestSessionExpires(t *testing.T) {
	s, b := loggedIn(t, "bob")
	s.sessions.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if code, out := b.do(http.MethodGet, pathSession, "", nil); code != http.StatusUnauthorized || !strings.Contains(out, "expired") {
		t.Errorf("an expired session: %d %s", code, out)
	}
	s.sessions.mu.Lock()
	left := len(s.sessions.byID)
	s.sessions.mu.Unlock()
	if left != 0 {
		t.Errorf("%d sessions kept after expiry", left)
	}
}

// TestMetricsRefused: with no metrics API to read (no metrics-server here), the history is
// refused with a reason, not served empty.
func TestMetricsRefused(t *testing.T) {
	_, b := loggedIn(t, "carol")
	if code, out := b.do(http.MethodGet, pathMetrics, "", nil); code != http.StatusForbidden || !strings.Contains(out, "metrics") {
		t.Errorf("metrics without a metrics API: %d %s", code, out)
	}
}
