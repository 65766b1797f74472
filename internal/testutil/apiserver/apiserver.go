// Package apiserver starts upstream's kube-apiserver on ketch's datastore for tests. It is a
// package of its own, not part of internal/testutil, so that the tests and tools importing
// testutil do not link kube-apiserver.
package apiserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	apiservertesting "k8s.io/kubernetes/cmd/kube-apiserver/app/testing"
	"k8s.io/kubernetes/test/utils/ktesting"

	"github.com/ketch-k8s/ketch/pkg/datastore"
)

// Server is upstream's kube-apiserver (its test server, k8s.io/kubernetes/cmd/kube-apiserver/
// app/testing) storing in ketch's own datastore, both in this process.
type Server struct {
	// Config is an admin client config: the apiserver's loopback credentials (system:masters).
	Config *rest.Config
	Client kubernetes.Interface
	// DatastoreURL is the datastore's unix:// URL; Etcd is a client of it, and StoragePrefix the
	// prefix of the apiserver's keys there (/registry).
	DatastoreURL  string
	Etcd          *clientv3.Client
	StoragePrefix string
	// ServingCert is the apiserver's self-signed serving certificate (PEM), for a client that
	// verifies it.
	ServingCert []byte
}

// Start starts ketch's datastore on a unix socket in a new temporary directory and a
// kube-apiserver on it listening on a free loopback port, waits until the apiserver is healthy
// and has created its default and kube-system namespaces, and stops both in tb's cleanup
// (about 1 s). The start takes about 2.5 s on an idle 2-core machine, twice that on a busy
// one, so a package whose tests share one passes a MainTB from its TestMain rather than each
// test's *testing.T.
//
// It needs no root and no fixed port. The apiserver authorizes everything (AlwaysAllow) and
// runs only its own controllers: no kube-controller-manager deletes a namespace's content,
// collects garbage or cleans expired tokens.
func Start(tb ktesting.TB, extraFlags ...string) *Server {
	tb.Helper()
	// A short path: a unix socket path must fit in 108 bytes, which t.TempDir() may not.
	dir, err := os.MkdirTemp("", "ketch-apiserver-")
	if err != nil {
		tb.Fatalf("creating the datastore dir: %v", err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	url := "unix://" + filepath.Join(dir, "datastore.sock")
	ds, err := datastore.Start(datastore.Config{DataDir: filepath.Join(dir, "data"), ListenClientURLs: []string{url}})
	if err != nil {
		tb.Fatalf("starting the datastore: %v", err)
	}
	// Cleanups run last-in first-out: the apiserver stops before its datastore.
	tb.Cleanup(func() {
		if err := ds.Stop(); err != nil {
			tb.Errorf("stopping the datastore: %v", err)
		}
	})

	// Upstream's test server would otherwise look for a cached serving certificate beside its
	// own source file (see bazelEnv). --cert-dir rather than --tls-cert-file: the test server
	// also trusts <cert-dir>/apiserver.crt as its peer-proxy CA, and fails without it.
	certDir := filepath.Join(dir, "certs")
	selfSignedServing(tb, certDir)
	storage := storagebackend.NewDefaultConfig("/registry", nil)
	storage.Transport.ServerList = []string{url}
	flags := append([]string{
		"--cert-dir=" + certDir,
		// No Endpoints for 127.0.0.1 kept up to date: nothing here dials the kubernetes Service.
		"--endpoint-reconciler-type=none",
	}, extraFlags...)
	startMu.Lock()
	restore := bazelEnv(dir)
	server, err := apiservertesting.StartTestServer(tb, nil, flags, storage)
	restore()
	startMu.Unlock()
	if err != nil {
		tb.Fatalf("starting kube-apiserver on ketch's datastore: %v", err)
	}
	tb.Cleanup(server.TearDownFn)
	client, err := kubernetes.NewForConfig(server.ClientConfig)
	if err != nil {
		tb.Fatalf("admin client: %v", err)
	}
	// StartTestServer waits for the default namespace only; kube-system comes from another
	// post-start hook, a moment later.
	err = wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		tb.Fatalf("waiting for namespace kube-system: %v", err)
	}
	serving, err := os.ReadFile(filepath.Join(certDir, "apiserver.crt"))
	if err != nil {
		tb.Fatalf("reading the serving certificate: %v", err)
	}
	return &Server{Config: server.ClientConfig, Client: client, DatastoreURL: url, Etcd: server.EtcdClient, StoragePrefix: server.EtcdStoragePrefix, ServingCert: serving}
}

// startMu serializes starts: StartTestServer sets process-wide feature gates, and bazelEnv the
// environment.
var startMu sync.Mutex

// bazelEnv sets TEST_SRCDIR and TEST_WORKSPACE, unless they are set, until restore is called.
// StartTestServer insists on an absolute path for its own package directory and, when a binary
// is built with -trimpath, builds one from those two variables as under Bazel, or fails. It uses
// the path only to find a default serving certificate, which Start does not need.
func bazelEnv(dir string) (restore func()) {
	if os.Getenv("TEST_SRCDIR") != "" && os.Getenv("TEST_WORKSPACE") != "" {
		return func() {}
	}
	oldDir, hadDir := os.LookupEnv("TEST_SRCDIR")
	oldWS, hadWS := os.LookupEnv("TEST_WORKSPACE")
	os.Setenv("TEST_SRCDIR", dir)
	os.Setenv("TEST_WORKSPACE", "trimpath")
	return func() {
		for _, v := range []struct {
			name, old string
			had       bool
		}{{"TEST_SRCDIR", oldDir, hadDir}, {"TEST_WORKSPACE", oldWS, hadWS}} {
			if v.had {
				os.Setenv(v.name, v.old)
			} else {
				os.Unsetenv(v.name)
			}
		}
	}
}

// selfSignedServing writes a throwaway serving certificate for 127.0.0.1, apiserver.crt and
// apiserver.key, into dir.
func selfSignedServing(tb ktesting.TB, dir string) {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("serving key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "kube-apiserver-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("serving certificate: %v", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatalf("serving key: %v", err)
	}
	certFile, keyFile := filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		tb.Fatal(err)
	}
}
