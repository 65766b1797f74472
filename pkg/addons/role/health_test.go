package role

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestServeHealth(t *testing.T) {
	// A port taken fails the start; the same port once free is served.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := taken.Addr().String()
	if stop, err := ServeHealth(addr, nil); err == nil {
		stop()
		t.Fatalf("ServeHealth on %s, a port already taken: no error", addr)
	}
	taken.Close()

	var failure error
	stop, err := ServeHealth(addr, func() error { return failure })
	if err != nil {
		t.Fatal(err)
	}
	get := func(method, path string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	if code, body := get(http.MethodGet, "/healthz"); code != http.StatusOK || body != "ok" {
		t.Errorf("passing: %d %q, want 200 ok", code, body)
	}
	failure = errors.New("failed to renew the lease")
	if code, body := get(http.MethodGet, "/healthz"); code != http.StatusServiceUnavailable || body != failure.Error() {
		t.Errorf("failing: %d %q, want 503 with the check's error", code, body)
	}
	if code, _ := get(http.MethodPost, "/healthz"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", code)
	}
	if code, _ := get(http.MethodGet, "/metrics"); code != http.StatusNotFound {
		t.Errorf("another path: %d, want 404", code)
	}

	stop()
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("/healthz still served after stop")
	}
}
