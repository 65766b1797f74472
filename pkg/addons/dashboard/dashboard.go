// Package dashboard is the web dashboard role of the addon image: the front end's files
// (embedded) and a small server that logs a browser in with a bearer token and then calls the
// Kubernetes API for it with that token. The dashboard's own ServiceAccount has no rights and
// no token: everything the page does, the API authorizes as the logged-in user. The server's
// front door forwards https://<server>:6443/dashboard/ here over TLS (docs/dashboard.md).
package dashboard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

//go:embed web
var web embed.FS

// Assets are the front end's files.
func Assets() fs.FS {
	sub, err := fs.Sub(web, "web")
	if err != nil {
		panic(err) // web is embedded: it is there
	}
	return sub
}

// Main runs the dashboard with its command-line args (not including the role name) until ctx
// ends.
func Main(ctx context.Context, args []string) error {
	fset := flag.NewFlagSet("dashboard", flag.ContinueOnError)
	listen := fset.String("listen", ":8443", "address to serve HTTPS on")
	certFile := fset.String("tls-cert-file", "/etc/ketch/dashboard-tls/tls.crt", "serving certificate (the server signs it; the front door verifies it)")
	keyFile := fset.String("tls-key-file", "/etc/ketch/dashboard-tls/tls.key", "serving certificate's key")
	apiCAFile := fset.String("api-ca-file", "/etc/ketch/cluster-ca/ca.crt", "CA of the Kubernetes API's serving certificate")
	apiServer := fset.String("api-server", "", "the Kubernetes API's URL (default: the in-cluster address from KUBERNETES_SERVICE_HOST and _PORT)")
	ttl := fset.Duration("session-ttl", 8*time.Hour, "how long a login lasts")
	klog.InitFlags(fset)
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fset.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fset.Args())
	}
	api, err := apiURL(*apiServer)
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(*apiCAFile)
	if err != nil {
		return fmt.Errorf("the API's CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("the API's CA %s holds no PEM certificate", *apiCAFile)
	}
	certs := &certReloader{certFile: *certFile, keyFile: *keyFile}
	if _, err := certs.get(nil); err != nil {
		return err
	}
	s := NewServer(Options{APIServer: api, APICAs: pool, SessionTTL: *ttl, Assets: Assets()})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s,
		TLSConfig:         &tls.Config{GetCertificate: certs.get, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go s.Run(ctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	klog.InfoS("Dashboard serving", "addr", ln.Addr().String(), "api", api.String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Watches, log follows and terminals never end by themselves: close them.
	if err := srv.Shutdown(shutdown); err != nil {
		srv.Close()
	}
	return nil
}

// apiURL is the API's URL: the flag, or the in-cluster address.
func apiURL(flagValue string) (*url.URL, error) {
	if flagValue == "" {
		host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if host == "" || port == "" {
			return nil, errors.New("not in a pod (no KUBERNETES_SERVICE_HOST): pass --api-server")
		}
		flagValue = "https://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(flagValue)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("--api-server %q must be an https URL", flagValue)
	}
	return u, nil
}

// certReloader serves the certificate in its files, read again when they change: the server
// renews the Secret they come from, and the kubelet updates the mounted files in place.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	modTime time.Time
	cert    *tls.Certificate
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	st, err := os.Stat(c.certFile)
	if err != nil {
		return nil, fmt.Errorf("the serving certificate: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert != nil && st.ModTime().Equal(c.modTime) {
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		if c.cert != nil {
			// Caught between the two files' updates: keep the old pair until both are new.
			return c.cert, nil
		}
		return nil, fmt.Errorf("the serving certificate: %w", err)
	}
	c.cert, c.modTime = &cert, st.ModTime()
	return c.cert, nil
}
