package localpath

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseProvisionerFlags(t *testing.T) {
	o, err := parseProvisionerFlags([]string{"--helper-image=localhost/ketch/addons:0123abcd"})
	want := options{
		helperImage:     "localhost/ketch/addons:0123abcd",
		namespace:       "kube-system",
		provisionerName: "ketch.io/local-path",
		healthAddr:      ":8080",
	}
	if err != nil || o != want {
		t.Errorf("defaults: %+v, %v; want %+v", o, err, want)
	}
	o, err = parseProvisionerFlags([]string{"--helper-image=img", "--namespace=storage", "--provisioner-name=example.com/lp",
		"--health-addr=127.0.0.1:9000", "--kubeconfig=/etc/kc", "--v=0"})
	want = options{kubeconfig: "/etc/kc", helperImage: "img", namespace: "storage", provisionerName: "example.com/lp", healthAddr: "127.0.0.1:9000"}
	if err != nil || o != want {
		t.Errorf("all flags: %+v, %v; want %+v", o, err, want)
	}
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{nil, "--helper-image is required"},
		{[]string{"--helper-image=img", "--namespace="}, "--namespace"},
		{[]string{"--helper-image=img", "--provisioner-name="}, "--provisioner-name"},
		{[]string{"--helper-image=img", "extra"}, "unexpected arguments"},
		{[]string{"--no-such-flag"}, "no-such-flag"},
	} {
		if _, err := parseProvisionerFlags(tc.args); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%q: error %v, want one saying %q", tc.args, err, tc.wantErr)
		}
	}
}

// TestProvisionerStops runs the provisioner against an API server that is not there: it serves
// /healthz while it keeps trying for the lease, and returns without error once ctx ends.
func TestProvisionerStops(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- ProvisionerMain(ctx, []string{"--kubeconfig=" + kubeconfig, "--helper-image=img", "--health-addr=" + addr})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz did not answer 200: %v", err)
		}
		select {
		case err := <-done:
			t.Fatalf("the provisioner returned early: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the provisioner returned %v, want nil once ctx ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the provisioner did not stop within 10 s of ctx ending")
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("/healthz still served after the provisioner returned")
	}
}
