package control

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	cmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

// builtIn says the controllers are built only once kube-controller-manager's verbose health
// lists one of them, as it does after building all; its own checks before that do not count.
func TestBuiltInWaitsForControllerChecks(t *testing.T) {
	var built atomic.Bool
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || !r.URL.Query().Has("verbose") {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "[+]ping ok")
		fmt.Fprintln(w, "[+]log ok")
		if built.Load() {
			fmt.Fprintln(w, "[-]attach-detach-controller failed: reason withheld")
			fmt.Fprintln(w, "[+]garbage-collector-controller ok")
		}
		fmt.Fprintln(w, "healthz check passed")
	}))
	defer srv.Close()
	client, url := srv.Client(), srv.URL+"/healthz?verbose"
	known := cmapp.KnownControllers()

	if builtIn(client, url, known) {
		t.Fatal("built before any controller's check was listed")
	}
	built.Store(true)
	if !builtIn(client, url, known) {
		t.Fatal("not built although the controllers' checks are listed")
	}
	srv.Close()
	if builtIn(client, url, known) {
		t.Error("built although kube-controller-manager does not answer")
	}
}
