package dashboard

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

// Prefix is where the dashboard is served: the server's front door forwards this path as it
// is, and kubectl port-forward reaches the same paths.
const Prefix = "/dashboard/"

// Paths below Prefix.
const (
	pathLogin   = Prefix + "api/login"
	pathLogout  = Prefix + "api/logout"
	pathSession = Prefix + "api/session"
	pathMetrics = Prefix + "api/metrics"
	// pathAPI is the Kubernetes API, called with the session's token: /dashboard/k8s/api/v1/pods
	// is the API's /api/v1/pods.
	pathAPI     = Prefix + "k8s/"
	pathHealthz = Prefix + "healthz"

	cookieName = "ketch_dashboard_session"
	// headerCSRF carries the session's CSRF token on every request that changes something.
	headerCSRF = "X-CSRF-Token"
	// queryCSRF carries it on WebSocket requests (exec), which cannot set headers; it is
	// removed before the request goes to the API.
	queryCSRF = "csrf"
)

// contentSecurityPolicy allows only the dashboard's own files: no inline script, no other
// origin, no framing. Inline styles are allowed: CodeMirror and xterm.js put their computed
// styles (themes, measured sizes) into <style> elements they make, and a style cannot run code.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Options configure the dashboard's HTTP handler.
type Options struct {
	// APIServer is the Kubernetes API's URL (in a pod: https://$KUBERNETES_SERVICE_HOST:port).
	APIServer *url.URL
	// APICAs verify the API's serving certificate.
	APICAs *x509.CertPool
	// SessionTTL is how long a login lasts.
	SessionTTL time.Duration
	// MetricsInterval is how often the metrics history samples metrics-server (default 10 s);
	// it keeps an hour.
	MetricsInterval time.Duration
	// Assets are the front end's files (index.html at the root).
	Assets fs.FS
}

// Server is the dashboard's HTTP handler: the front end's files, the login, and the API
// proxied with the logged-in user's own token, so RBAC applies as it does to kubectl.
type Server struct {
	opts     Options
	sessions *sessions
	history  *history
	api      *httputil.ReverseProxy
	client   *http.Client // for the login's token check
	mux      *http.ServeMux
}

// NewServer builds the handler; Run sweeps its sessions and samples its metrics history.
func NewServer(opts Options) *Server {
	// HTTP/1.1 to the API, a connection per request in flight: every session's watches, log
	// follows and terminals are long streams that end when the browser moves on, and one shared
	// HTTP/2 connection would tie every user's requests to each of them.
	transport := &http.Transport{
		Proxy:               nil, // the API is in the cluster; a proxy from the environment is not
		TLSClientConfig:     &tls.Config{RootCAs: opts.APICAs, MinVersion: tls.VersionTLS12},
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
	}
	if opts.MetricsInterval == 0 {
		opts.MetricsInterval = 10 * time.Second
	}
	s := &Server{opts: opts, sessions: newSessions(opts.SessionTTL), history: newHistory(opts.MetricsInterval, time.Hour),
		client: &http.Client{Transport: transport, Timeout: 15 * time.Second}, mux: http.NewServeMux()}
	s.api = &httputil.ReverseProxy{
		Rewrite:       s.rewriteAPI,
		Transport:     transport,
		FlushInterval: -1, // watches and log follows stream
		ModifyResponse: func(r *http.Response) error {
			// The API's cookies are not the dashboard's, whose path they would share.
			r.Header.Del("Set-Cookie")
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			klog.V(2).InfoS("API request failed", "path", r.URL.Path, "err", err)
			writeError(w, http.StatusBadGateway, "the Kubernetes API could not be reached: "+err.Error())
		},
	}
	s.mux.HandleFunc("POST "+pathLogin, s.login)
	s.mux.HandleFunc("POST "+pathLogout, s.withSession(s.logout))
	s.mux.HandleFunc("GET "+pathSession, s.withSession(s.session))
	s.mux.HandleFunc("GET "+pathMetrics, s.withSession(s.metrics))
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		s.mux.HandleFunc(m+" "+pathAPI, s.withSession(s.proxyAPI))
	}
	s.mux.HandleFunc("GET "+pathHealthz, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	s.mux.Handle("GET "+Prefix, http.StripPrefix(Prefix, http.FileServerFS(opts.Assets)))
	s.mux.Handle("GET /dashboard", http.RedirectHandler(Prefix, http.StatusMovedPermanently))
	return s
}

// Run sweeps expired sessions and samples the metrics until ctx ends.
func (s *Server) Run(ctx context.Context) {
	go s.sample(ctx)
	s.sessions.sweep(ctx, time.Minute)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	if strings.HasPrefix(r.URL.Path, Prefix+"api/") || strings.HasPrefix(r.URL.Path, pathAPI) {
		h.Set("Cache-Control", "no-store")
	}
	s.mux.ServeHTTP(w, r)
}

// apiError is every error the dashboard's own endpoints return, as JSON.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(apiError{Error: msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// sessionInfo is what the page learns of its session: who, and the CSRF token to send back.
type sessionInfo struct {
	User string `json:"user"`
	CSRF string `json:"csrf"`
}

// login checks a bearer token with the API (a SelfSubjectReview made with it) and starts a
// session for it. The token must come in the body, never in the URL.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "a login from another site is refused")
		return
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "the login must be JSON: {\"token\": \"...\"}")
		return
	}
	token := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(body.Token), "Bearer "))
	if token == "" {
		writeError(w, http.StatusBadRequest, "no token: paste the token that `ketch dashboard` printed, or another bearer token of this cluster")
		return
	}
	user, code, err := s.whoAmI(r.Context(), token)
	if err != nil {
		writeError(w, code, err.Error())
		return
	}
	id, ss := s.sessions.add(token, user)
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: id, Path: Prefix, MaxAge: int(s.opts.SessionTTL.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
	})
	klog.InfoS("Dashboard login", "user", user, "remote", r.RemoteAddr)
	writeJSON(w, sessionInfo{User: user, CSRF: ss.csrf})
}

// whoAmI asks the API who a token belongs to; a refusal comes back with the HTTP status to
// give the page.
func (s *Server) whoAmI(ctx context.Context, token string) (string, int, error) {
	body := []byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.opts.APIServer.JoinPath("/apis/authentication.k8s.io/v1/selfsubjectreviews").String(), bytes.NewReader(body))
	if err != nil {
		return "", http.StatusInternalServerError, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return "", http.StatusBadGateway, fmt.Errorf("the Kubernetes API could not be reached to check the token: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return "", http.StatusUnauthorized, errors.New("the API refused the token: it is wrong, expired or revoked. `ketch dashboard` prints a new one")
	case resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return "", http.StatusBadGateway, fmt.Errorf("checking the token: the API answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	var review struct {
		Status struct {
			UserInfo struct {
				Username string `json:"username"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&review); err != nil || review.Status.UserInfo.Username == "" {
		return "", http.StatusBadGateway, fmt.Errorf("checking the token: the API's answer names no user (%v)", err)
	}
	return review.Status.UserInfo.Username, 0, nil
}

// withSession runs h with the request's session, or answers 401.
func (s *Server) withSession(h func(http.ResponseWriter, *http.Request, string, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var id string
		if c, err := r.Cookie(cookieName); err == nil {
			id = c.Value
		}
		ss := s.sessions.get(id)
		if ss == nil {
			writeError(w, http.StatusUnauthorized, "not logged in, or the session expired: log in with a token")
			return
		}
		h(w, r, id, ss)
	}
}

func (s *Server) session(w http.ResponseWriter, r *http.Request, _ string, ss *session) {
	writeJSON(w, sessionInfo{User: ss.user, CSRF: ss.csrf})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, id string, ss *session) {
	if !ss.csrfOK(r.Header.Get(headerCSRF)) || !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "the request lacks this session's CSRF token")
		return
	}
	s.sessions.remove(id)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// changes says whether a request may change something: every method but GET and HEAD, and a
// WebSocket (exec and attach are GETs that the API authorizes as create).
func changes(r *http.Request) bool {
	return (r.Method != http.MethodGet && r.Method != http.MethodHead) || strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// sameOrigin is false for a request a browser says comes from another site. Browsers send
// Origin with every POST, PUT, PATCH, DELETE and WebSocket; a request without one is not from a
// page, and the CSRF token guards it.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

func (s *Server) proxyAPI(w http.ResponseWriter, r *http.Request, _ string, ss *session) {
	if changes(r) {
		got := r.Header.Get(headerCSRF)
		if got == "" {
			got = r.URL.Query().Get(queryCSRF)
		}
		if !ss.csrfOK(got) || !sameOrigin(r) {
			writeError(w, http.StatusForbidden, "the request lacks this session's CSRF token")
			return
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, ss))
	s.api.ServeHTTP(w, r)
}

type sessionKey struct{}

// rewriteAPI sends a /dashboard/k8s/... request to the API as the session's user: the path
// below pathAPI, the user's token, and nothing of the browser's own credentials.
func (s *Server) rewriteAPI(pr *httputil.ProxyRequest) {
	ss := pr.In.Context().Value(sessionKey{}).(*session)
	pr.SetURL(s.opts.APIServer)
	pr.Out.URL.Path = "/" + strings.TrimPrefix(pr.In.URL.Path, pathAPI)
	pr.Out.URL.RawPath = ""
	q := pr.Out.URL.Query()
	if q.Has(queryCSRF) {
		q.Del(queryCSRF)
		pr.Out.URL.RawQuery = q.Encode()
	}
	pr.Out.Host = s.opts.APIServer.Host
	pr.Out.Header.Del("Cookie")
	pr.Out.Header.Del(headerCSRF)
	pr.Out.Header.Del("Origin") // the API does not check it; the dashboard did
	pr.Out.Header.Set("Authorization", "Bearer "+ss.token)
}
