package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/ketch-k8s/ketch/pkg/pki"
)

func testCerts(t *testing.T) *pki.ControlPlane {
	t.Helper()
	base := t.TempDir()
	certs, err := pki.EnsureControlPlane(pki.ControlPlaneOptions{
		Dir: filepath.Join(base, "tls"), CredDir: filepath.Join(base, "cred"), APIServerURL: "https://127.0.0.1:6443",
		NodeName: "node-a", NodeIPs: []net.IP{net.ParseIP("192.0.2.10")}, ServiceIP: net.ParseIP("10.43.0.1"), ClusterDomain: "cluster.local",
	})
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

// TestDashboardTLS: the Secret is made once and kept while it does its job; with the dashboard
// disabled it is removed.
func TestDashboardTLS(t *testing.T) {
	certs := testCerts(t)
	client := fake.NewClientset()
	ctx := context.Background()
	if err := ensureDashboardTLS(ctx, client, certs, "cluster.local", false); err != nil {
		t.Fatal(err)
	}
	s, err := client.CoreV1().Secrets("kube-system").Get(ctx, dashboardTLSSecret, metav1.GetOptions{})
	if err != nil || s.Type != corev1.SecretTypeTLS || len(s.Data[corev1.TLSCertKey]) == 0 || len(s.Data[corev1.TLSPrivateKeyKey]) == 0 {
		t.Fatalf("Secret %v: %+v", err, s)
	}
	if err := ensureDashboardTLS(ctx, client, certs, "cluster.local", false); err != nil {
		t.Fatal(err)
	}
	again, _ := client.CoreV1().Secrets("kube-system").Get(ctx, dashboardTLSSecret, metav1.GetOptions{})
	if string(again.Data[corev1.TLSCertKey]) != string(s.Data[corev1.TLSCertKey]) {
		t.Error("a good certificate was replaced")
	}
	if err := ensureDashboardTLS(ctx, client, certs, "cluster.local", true); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets("kube-system").Get(ctx, dashboardTLSSecret, metav1.GetOptions{}); err == nil {
		t.Error("the disabled dashboard's Secret is still there")
	}
	if err := ensureDashboardTLS(ctx, client, certs, "cluster.local", true); err != nil {
		t.Errorf("disabled twice: %v", err)
	}
}

// TestDashboardTLSRace: two servers starting together both find no Secret; the one whose create
// comes second takes the other's Secret instead of failing its start.
func TestDashboardTLSRace(t *testing.T) {
	certs := testCerts(t)
	client := fake.NewClientset()
	ctx := context.Background()
	// The other server, given the same CA, writes its Secret right after this one's first read.
	other := fake.NewClientset()
	if err := ensureDashboardTLS(ctx, other, certs, "cluster.local", false); err != nil {
		t.Fatal(err)
	}
	theirs, err := other.CoreV1().Secrets("kube-system").Get(ctx, dashboardTLSSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	theirs.ResourceVersion = ""
	raced := false
	client.PrependReactor("get", "secrets", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if !raced {
			raced = true
			if err := client.Tracker().Add(theirs); err != nil {
				t.Error(err)
			}
			return true, nil, apierrors.NewNotFound(corev1.Resource("secrets"), dashboardTLSSecret)
		}
		return false, nil, nil
	})
	if err := ensureDashboardTLS(ctx, client, certs, "cluster.local", false); err != nil {
		t.Fatalf("the server that lost the race: %v", err)
	}
	s, err := client.CoreV1().Secrets("kube-system").Get(ctx, dashboardTLSSecret, metav1.GetOptions{})
	if err != nil || string(s.Data[corev1.TLSCertKey]) != string(theirs.Data[corev1.TLSCertKey]) {
		t.Errorf("the winner's good certificate was not kept: %v", err)
	}
}

// TestDashboardProxy: the front door says when the dashboard is disabled or not deployed, and
// otherwise forwards to the Service over TLS it verifies, keeping the browser's Host, and
// passes a WebSocket upgrade through both ways.
func TestDashboardProxy(t *testing.T) {
	certs := testCerts(t)
	caPEM, err := os.ReadFile(certs.ServerCA)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, _, err := certs.EnsureServing(dashboardNames("cluster.local"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "websocket" {
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			rw.Flush()
			line, _ := rw.ReadString('\n')
			rw.WriteString("echo " + line)
			rw.Flush()
			return
		}
		io.WriteString(w, "host="+r.Host+" path="+r.URL.Path)
	}))
	backend.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	backend.StartTLS()
	defer backend.Close()
	host, port, _ := net.SplitHostPort(backend.Listener.Addr().String())
	portNum, _ := strconv.Atoi(port)

	get := func(h http.Handler, path string) (int, string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "https://203.0.113.7:6443"+path, nil)
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}

	disabled, err := newDashboardProxy(fake.NewClientset(), caPEM, "cluster.local", true)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(disabled, "/dashboard/"); code != http.StatusNotFound || !strings.Contains(body, "the dashboard is disabled") {
		t.Errorf("disabled: %d %s", code, body)
	}

	client := fake.NewClientset()
	d, err := newDashboardProxy(client, caPEM, "cluster.local", false)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(d, "/dashboard/"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not deployed yet") {
		t.Errorf("no Service: %d %s", code, body)
	}
	client.CoreV1().Services("kube-system").Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: dashboardService, Namespace: "kube-system"},
		Spec:       corev1.ServiceSpec{ClusterIP: host, Ports: []corev1.ServicePort{{Port: int32(portNum)}}},
	}, metav1.CreateOptions{})
	d.forget()
	if code, body := get(d, "/dashboard"); code != http.StatusMovedPermanently {
		t.Errorf("/dashboard: %d %s", code, body)
	}
	if code, body := get(d, "/dashboard/api/session"); code != http.StatusOK || body != "host=203.0.113.7:6443 path=/dashboard/api/session" {
		t.Errorf("forwarded: %d %s", code, body)
	}

	// A WebSocket through a real listener.
	front := httptest.NewServer(d)
	defer front.Close()
	conn, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /dashboard/k8s/exec HTTP/1.1\r\nHost: front\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	r := bufio.NewReader(conn)
	status, _ := r.ReadString('\n')
	if !strings.Contains(status, "101") {
		t.Fatalf("upgrade: %q", status)
	}
	for {
		l, err := r.ReadString('\n')
		if err != nil || l == "\r\n" {
			break
		}
	}
	io.WriteString(conn, "hello\n")
	if got, _ := r.ReadString('\n'); got != "echo hello\n" {
		t.Errorf("through the upgraded connection: %q", got)
	}

	// A backend whose certificate the server CA did not sign is not trusted.
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "impostor") }))
	defer other.Close()
	_, otherPort, _ := net.SplitHostPort(other.Listener.Addr().String())
	svc, _ := client.CoreV1().Services("kube-system").Get(context.Background(), dashboardService, metav1.GetOptions{})
	p, _ := strconv.Atoi(otherPort)
	svc.Spec.Ports[0].Port = int32(p)
	client.CoreV1().Services("kube-system").Update(context.Background(), svc, metav1.UpdateOptions{})
	d.forget()
	if code, body := get(d, "/dashboard/"); code != http.StatusServiceUnavailable || strings.Contains(body, "impostor") {
		t.Errorf("an untrusted backend: %d %s", code, body)
	}
}
