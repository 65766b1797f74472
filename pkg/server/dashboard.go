package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/pki"
)

// The dashboard addon's objects that the server itself deals with (manifests/dashboard.yaml).
const (
	dashboardNamespace = metav1.NamespaceSystem
	dashboardService   = "ketch-dashboard"
	dashboardTLSSecret = "ketch-dashboard-tls"
	// dashboardPath is where the front door serves it: the same path in the pod.
	dashboardPath = "/dashboard/"
)

// dashboardNames are the names the dashboard's serving certificate is for; the front door
// verifies the first.
func dashboardNames(clusterDomain string) []string {
	svc := dashboardService + "." + dashboardNamespace + ".svc"
	return []string{svc, svc + "." + clusterDomain}
}

// ensureDashboardTLS keeps the dashboard's serving certificate in its Secret: signed by the
// server CA, which the front door trusts, renewed when due. With the dashboard disabled it
// removes the Secret, so that nothing of it is left. Servers that start together race to write
// it: the one that loses reads the winner's Secret again and keeps it if it does its job.
func ensureDashboardTLS(ctx context.Context, client kubernetes.Interface, certs *pki.ControlPlane, clusterDomain string, disabled bool) error {
	secrets := client.CoreV1().Secrets(dashboardNamespace)
	if disabled {
		if err := secrets.Delete(ctx, dashboardTLSSecret, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("removing the disabled dashboard's Secret %s: %w", dashboardTLSSecret, err)
		}
		return nil
	}
	lostRace := func(err error) bool { return apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) }
	return retry.OnError(retry.DefaultRetry, lostRace, func() error {
		old, err := secrets.Get(ctx, dashboardTLSSecret, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading Secret %s: %w", dashboardTLSSecret, err)
		}
		exists := err == nil
		var oldCert, oldKey []byte
		if exists {
			oldCert, oldKey = old.Data[corev1.TLSCertKey], old.Data[corev1.TLSPrivateKeyKey]
		}
		cert, key, why, err := certs.EnsureServing(dashboardNames(clusterDomain), oldCert, oldKey)
		if err != nil {
			return fmt.Errorf("the dashboard's serving certificate: %w", err)
		}
		if why == "" {
			return nil
		}
		klog.InfoS("Issuing the dashboard's serving certificate", "secret", dashboardNamespace+"/"+dashboardTLSSecret, "reason", why)
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: dashboardTLSSecret, Namespace: dashboardNamespace, Labels: map[string]string{"app.kubernetes.io/name": dashboardService}},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key},
		}
		if !exists {
			_, err = secrets.Create(ctx, secret, metav1.CreateOptions{})
		} else {
			secret.ResourceVersion = old.ResourceVersion
			_, err = secrets.Update(ctx, secret, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("writing Secret %s: %w", dashboardTLSSecret, err)
		}
		return nil
	})
}

// dashboardProxy is the front door's /dashboard/: it forwards to the dashboard Service's
// ClusterIP over TLS, verifying the dashboard's certificate against the server CA, WebSockets
// included (terminals, log follows).
type dashboardProxy struct {
	client   kubernetes.Interface
	disabled bool
	proxy    *httputil.ReverseProxy

	mu       sync.Mutex
	target   string // the Service's ClusterIP:port
	lookedUp time.Time
}

// serviceTTL is how long the front door trusts the Service's address it looked up.
const serviceTTL = 10 * time.Second

func newDashboardProxy(client kubernetes.Interface, serverCA []byte, clusterDomain string, disabled bool) (*dashboardProxy, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(serverCA) {
		return nil, errors.New("the server CA holds no certificate")
	}
	d := &dashboardProxy{client: client, disabled: disabled}
	// HTTP/1.1 to the dashboard, a connection per request in flight: the page's watches and log
	// follows are long streams that the browser cancels as it moves between views, and over one
	// shared HTTP/2 connection a broken stream could take every other request of the browser
	// with it.
	transport := &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: dashboardNames(clusterDomain)[0], MinVersion: tls.VersionTLS12},
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
	}
	d.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "https", Host: pr.In.Context().Value(targetKey{}).(string)})
			pr.Out.Host = pr.In.Host // the dashboard checks Origin against it
			pr.SetXForwarded()
		},
		Transport:     transport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the browser went away (a view it left); nothing failed
			}
			klog.V(2).InfoS("Dashboard request failed", "path", r.URL.Path, "err", err)
			d.forget()
			dashboardUnavailable(w, "the dashboard does not answer yet (its pod may still be starting): try again in a few seconds")
		},
	}
	return d, nil
}

type targetKey struct{}

func dashboardUnavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Retry-After", "5")
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintln(w, msg)
}

func (d *dashboardProxy) forget() {
	d.mu.Lock()
	d.target = ""
	d.mu.Unlock()
}

// lookup is the Service's ClusterIP and port, cached for serviceTTL.
func (d *dashboardProxy) lookup(ctx context.Context) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.target != "" && time.Since(d.lookedUp) < serviceTTL {
		return d.target, nil
	}
	svc, err := d.client.CoreV1().Services(dashboardNamespace).Get(ctx, dashboardService, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone || len(svc.Spec.Ports) == 0 {
		return "", fmt.Errorf("Service %s/%s has no ClusterIP and port", dashboardNamespace, dashboardService)
	}
	d.target = net.JoinHostPort(svc.Spec.ClusterIP, fmt.Sprint(svc.Spec.Ports[0].Port))
	d.lookedUp = time.Now()
	return d.target, nil
}

func (d *dashboardProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d.disabled {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintln(w, "the dashboard is disabled on this server (ketch server --disable dashboard): start the server without that to have it")
		return
	}
	if r.URL.Path == strings.TrimSuffix(dashboardPath, "/") {
		http.Redirect(w, r, dashboardPath, http.StatusMovedPermanently)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	target, err := d.lookup(ctx)
	cancel()
	if err != nil {
		if apierrors.IsNotFound(err) {
			dashboardUnavailable(w, "the dashboard is not deployed yet: the server applies it shortly after it starts; try again in a few seconds")
			return
		}
		dashboardUnavailable(w, "looking up the dashboard's Service: "+err.Error())
		return
	}
	d.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, target)))
}

// DashboardAdmin is the ServiceAccount `ketch dashboard` makes tokens for by default; a
// ClusterRoleBinding of the same name makes it cluster-admin.
const DashboardAdmin = "ketch-dashboard-admin"

// MinDashboardTTL is the shortest token the API issues (TokenRequest's own minimum).
const MinDashboardTTL = 10 * time.Minute

// DashboardToken issues a token for the ServiceAccount namespace/name that expires after ttl.
// For the default account (DashboardAdmin in kube-system) it first makes the account and its
// cluster-admin binding where they are missing; another account must exist.
func DashboardToken(ctx context.Context, client kubernetes.Interface, namespace, name string, ttl time.Duration) (string, time.Time, error) {
	if ttl < MinDashboardTTL {
		return "", time.Time{}, fmt.Errorf("--ttl %s is shorter than the API's minimum of %s", ttl, MinDashboardTTL)
	}
	if namespace == dashboardNamespace && name == DashboardAdmin {
		if err := ensureDashboardAdmin(ctx, client); err != nil {
			return "", time.Time{}, err
		}
	} else if _, err := client.CoreV1().ServiceAccounts(namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return "", time.Time{}, fmt.Errorf("there is no ServiceAccount %s/%s: make it first (kubectl create serviceaccount -n %s %s) and bind it the roles it should have", namespace, name, namespace, name)
		}
		return "", time.Time{}, fmt.Errorf("reading ServiceAccount %s/%s: %w", namespace, name, err)
	}
	seconds := int64(ttl.Seconds())
	tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("a token for ServiceAccount %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, tr.Status.ExpirationTimestamp.Time, nil
}

func ensureDashboardAdmin(ctx context.Context, client kubernetes.Interface) error {
	labels := map[string]string{"app.kubernetes.io/name": dashboardService}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: DashboardAdmin, Namespace: dashboardNamespace, Labels: labels}}
	if _, err := client.CoreV1().ServiceAccounts(dashboardNamespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("making ServiceAccount %s/%s: %w", dashboardNamespace, DashboardAdmin, err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: DashboardAdmin, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: DashboardAdmin, Namespace: dashboardNamespace}},
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("making ClusterRoleBinding %s: %w", DashboardAdmin, err)
	}
	return nil
}
