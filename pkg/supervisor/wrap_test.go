package supervisor

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestWrapRoutesTheDashboard: /dashboard and below go to the dashboard; everything else that is
// not the supervisor's goes to kube-apiserver, /dashboardx included.
func TestWrapRoutesTheDashboard(t *testing.T) {
	named := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
	}
	for _, withDashboard := range []bool{true, false} {
		opts := Options{}
		if withDashboard {
			opts.Dashboard = named("dashboard")
		}
		h := New(opts).Wrap(named("apiserver"))
		for path, want := range map[string]string{
			"/dashboard": "dashboard", "/dashboard/": "dashboard", "/dashboard/k8s/api/v1/pods": "dashboard",
			"/dashboardx": "apiserver", "/api/v1/pods": "apiserver", "/ping": "pong",
		} {
			if !withDashboard && want == "dashboard" {
				want = "apiserver"
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if got := rec.Body.String(); got != want {
				t.Errorf("dashboard %t: GET %s went to %q, want %q", withDashboard, path, got, want)
			}
		}
	}
}
