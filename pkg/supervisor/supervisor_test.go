package supervisor_test

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"

	"github.com/ketch-k8s/ketch/pkg/bootstrap"
	"github.com/ketch-k8s/ketch/pkg/pki"
	"github.com/ketch-k8s/ketch/pkg/supervisor"
	"github.com/ketch-k8s/ketch/pkg/token"
)

// /cacerts and /ping answer without credentials; /v1-ketch/ does not; every other path is
// kube-apiserver's.
func TestOpenPaths(t *testing.T) {
	c := newCluster(t)
	r := c.raw(t, http.MethodGet, supervisor.PathCACerts, nil, creds{})
	if r.status != http.StatusOK || r.body != strings.TrimSpace(string(c.caBundle)) {
		t.Errorf("GET /cacerts = %d %q, want 200 and the server CA", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/x-pem-file" {
		t.Errorf("/cacerts Content-Type = %q", ct)
	}
	if r := c.raw(t, http.MethodGet, supervisor.PathPing, nil, creds{}); r.status != http.StatusOK || r.body != "pong" {
		t.Errorf("GET /ping = %d %q, want 200 pong", r.status, r.body)
	}
	wantBare401(t, c.raw(t, http.MethodGet, supervisor.PathConfig, nil, creds{}))
	wantBare401(t, c.raw(t, http.MethodPost, supervisor.PathNodeCerts, nil, creds{}))
	if r := c.raw(t, http.MethodGet, "/v1-ketch/other", nil, creds{}); r.status != http.StatusNotFound {
		t.Errorf("GET /v1-ketch/other = %d, want the supervisor's 404", r.status)
	}
	if n := c.passedOn.Load(); n != 0 {
		t.Fatalf("%d supervisor requests reached kube-apiserver", n)
	}
	for _, path := range []string{"/api/v1/namespaces", "/healthz", "/v1-ketch", "/cacerts/x"} {
		if r := c.raw(t, http.MethodGet, path, nil, creds{}); r.status != http.StatusTeapot {
			t.Errorf("GET %s = %d, want kube-apiserver's 418", path, r.status)
		}
	}
	if n := c.passedOn.Load(); n != 4 {
		t.Errorf("%d requests reached kube-apiserver, want 4", n)
	}
}

// The server token: its secret opens the API; another secret gets a bare 401.
func TestServerToken(t *testing.T) {
	c := newCluster(t)
	cfg, err := c.connect(t, c.serverToken).Config(context.Background())
	if err != nil {
		t.Fatalf("Config with the server token: %v", err)
	}
	if *cfg != agentConfig {
		t.Errorf("Config = %+v, want %+v", *cfg, agentConfig)
	}

	wrong := c.serverToken
	wrong.Password = "not-the-" + wrong.Password
	_, err = c.connect(t, wrong).Config(context.Background())
	wantRefused(t, err, http.StatusUnauthorized)
	r := c.raw(t, http.MethodGet, supervisor.PathConfig, nil, creds{token: &wrong})
	wantBare401(t, r)
}

// Agent tokens are bootstrap-token Secrets: a valid one opens the API, and a wrong secret, an
// expired token and a deleted one get the same bare 401.
func TestAgentTokens(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()

	t.Run("valid", func(t *testing.T) {
		tok := c.agentToken(t, time.Hour)
		sc := c.connect(t, tok)
		if cfg, err := sc.Config(ctx); err != nil || *cfg != agentConfig {
			t.Fatalf("Config = %+v, %v", cfg, err)
		}
		m := newMachine(t)
		if _, err := sc.SignNodeCerts(ctx, m.request(t, nodeName("agent-token")), m.password); err != nil {
			t.Fatalf("joining with an agent token: %v", err)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		tok := c.agentToken(t, 0)
		tok.Password = strings.Repeat("0", 16)
		_, err := c.connect(t, tok).Config(ctx)
		wantRefused(t, err, http.StatusUnauthorized)
		wantBare401(t, c.raw(t, http.MethodGet, supervisor.PathConfig, nil, creds{token: &tok}))
	})
	t.Run("expired", func(t *testing.T) {
		// As token.Create stores a token with a TTL, but the time has passed; and its twin that
		// expires in an hour, to show that only the date differs.
		expired := storeBootstrapToken(t, c, time.Now().Add(-time.Minute))
		_, err := c.connect(t, expired).Config(ctx)
		wantRefused(t, err, http.StatusUnauthorized)
		wantBare401(t, c.raw(t, http.MethodGet, supervisor.PathConfig, nil, creds{token: &expired}))
		valid := storeBootstrapToken(t, c, time.Now().Add(time.Hour))
		if _, err := c.connect(t, valid).Config(ctx); err != nil {
			t.Fatalf("the same token expiring in an hour: %v", err)
		}
	})
	t.Run("deleted", func(t *testing.T) {
		tok := c.agentToken(t, 0)
		sc := c.connect(t, tok)
		if _, err := sc.Config(ctx); err != nil {
			t.Fatalf("before deleting: %v", err)
		}
		if err := token.Delete(ctx, c.client, tok.Username); err != nil {
			t.Fatal(err)
		}
		_, err := sc.Config(ctx)
		wantRefused(t, err, http.StatusUnauthorized)
		wantBare401(t, c.raw(t, http.MethodGet, supervisor.PathConfig, nil, creds{token: &tok}))
	})
	t.Run("malformed id", func(t *testing.T) {
		tok := token.Token{CAHash: c.serverToken.CAHash, Username: "NOT-AN-ID", Password: "0123456789abcdef"}
		wantBare401(t, c.raw(t, http.MethodGet, supervisor.PathConfig, nil, creds{token: &tok}))
	})
	t.Run("none", func(t *testing.T) {
		wantBare401(t, c.raw(t, http.MethodGet, supervisor.PathConfig, nil, creds{}))
		wantBare401(t, c.raw(t, http.MethodPost, supervisor.PathNodeCerts, []byte("{}"), creds{password: newMachine(t).password}))
	})
}

// storeBootstrapToken stores an agent token expiring at exp, in token.Create's format.
func storeBootstrapToken(t *testing.T, c *testCluster, exp time.Time) token.Token {
	t.Helper()
	raw, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		t.Fatal(err)
	}
	id, secret, _ := strings.Cut(raw, ".")
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: bootstraputil.BootstrapTokenSecretName(id), Namespace: metav1.NamespaceSystem},
		Type:       bootstrapapi.SecretTypeBootstrapToken,
		Data: map[string][]byte{
			bootstrapapi.BootstrapTokenIDKey:         []byte(id),
			bootstrapapi.BootstrapTokenSecretKey:     []byte(secret),
			bootstrapapi.BootstrapTokenExpirationKey: []byte(exp.UTC().Format(time.RFC3339)),
		},
	}
	if _, err := c.client.CoreV1().Secrets(metav1.NamespaceSystem).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return token.Token{CAHash: token.CAHash(c.caBundle), Username: id, Password: secret}
}

// wantRefused checks err is the server's refusal with status, which an agent does not retry
// unless it is a 5xx.
func wantRefused(t *testing.T, err error, status int) *supervisor.RefusedError {
	t.Helper()
	var refused *supervisor.RefusedError
	if !errors.As(err, &refused) || refused.Status != status {
		t.Fatalf("error = %v, want the server's refusal with HTTP %d", err, status)
	}
	if got, want := supervisor.Retryable(err), status >= 500; got != want {
		t.Errorf("Retryable(%v) = %v, want %v", err, got, want)
	}
	return refused
}

// wantBare401 checks a refusal asks for credentials and says nothing of why it refused.
func wantBare401(t *testing.T, r reply) {
	t.Helper()
	if r.status != http.StatusUnauthorized || r.body != "unauthorized" {
		t.Errorf("answer = %d %q, want 401 \"unauthorized\"", r.status, r.body)
	}
	if got := r.header.Get("WWW-Authenticate"); got != `Basic realm="ketch"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
}

// The server secret alone (no CA hash) joins: the server proves it knows the secret.
func TestBareServerSecret(t *testing.T) {
	c := newCluster(t)
	bare := token.Token{Username: token.ServerUser, Password: c.serverToken.Password}
	client, err := supervisor.Connect(context.Background(), c.url, bare)
	if err != nil {
		t.Fatalf("Connect with the bare server secret: %v", err)
	}
	if _, err := client.Config(context.Background()); err != nil {
		t.Fatalf("Config with the bare server secret: %v", err)
	}
}

// A token of another cluster: Connect finds the CA it downloads is not the token's and stops
// before it sends the secret.
func TestTokenForAnotherCluster(t *testing.T) {
	ours, other := newCluster(t), newCluster(t)
	bare := token.Token{Username: token.ServerUser, Password: ours.serverToken.Password}
	for name, tok := range map[string]token.Token{"server token": ours.serverToken, "agent token": ours.agentToken(t, 0), "bare server secret": bare} {
		before := len(other.requests())
		_, err := supervisor.Connect(context.Background(), other.url, tok)
		if !errors.Is(err, supervisor.ErrCAMismatch) {
			t.Fatalf("%s: Connect to another cluster: %v, want ErrCAMismatch", name, err)
		}
		if supervisor.Retryable(err) {
			t.Errorf("%s: Retryable(%v) = true", name, err)
		}
		got := other.requests()[before:]
		if len(got) != 1 || got[0].Get("X-Test-Path") != supervisor.PathCACerts {
			t.Errorf("%s: the other cluster got %v, want only GET /cacerts", name, got)
		}
		for _, h := range got {
			for k, vs := range h {
				for _, v := range vs {
					if k == "Authorization" || k == supervisor.HeaderNodePassword || strings.Contains(v, tok.Password) {
						t.Errorf("%s: the other cluster got credentials: %s: %s", name, k, v)
					}
				}
			}
		}
	}
	// The recorder sees credentials when they are sent: its own token reaches it with them.
	if _, err := other.connect(t, other.serverToken).Config(context.Background()); err != nil {
		t.Fatal(err)
	}
	last := other.requests()[len(other.requests())-1]
	if user, pass, ok := (&http.Request{Header: last}).BasicAuth(); !ok || user != token.ServerUser || pass != other.serverToken.Password {
		t.Errorf("the recorder did not see the cluster's own token: %v", last)
	}
}

// A first join stores the machine's password hash and returns certificates of the cluster's
// CAs for the node's name, addresses and the machine's keys; the same machine may ask again.
func TestFirstJoin(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	node := nodeName("first-join")
	ips := []net.IP{net.ParseIP("192.0.2.10").To4(), net.ParseIP("2001:db8::10")}
	m := newMachine(t)
	sc := c.connect(t, c.agentToken(t, time.Hour))

	certs, err := sc.SignNodeCerts(ctx, m.request(t, node, ips...), m.password)
	if err != nil {
		t.Fatalf("first join: %v", err)
	}
	if string(certs.ServerCA) != string(c.caBundle) || string(certs.ClientCA) != string(c.clientCA) {
		t.Errorf("the answer's CAs are not the cluster's")
	}
	serverCAs, clientCAs := x509.NewCertPool(), x509.NewCertPool()
	serverCAs.AppendCertsFromPEM(c.caBundle)
	clientCAs.AppendCertsFromPEM(c.clientCA)

	serving := parseCert(t, certs.KubeletServing)
	if _, err := serving.Verify(x509.VerifyOptions{Roots: serverCAs, DNSName: node, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("kubelet serving certificate does not verify against the server CA for %s: %v", node, err)
	}
	wantSubject(t, "kubelet serving", serving, "system:node:"+node, "system:nodes")
	if got := slices.Sorted(slices.Values(serving.DNSNames)); !slices.Equal(got, slices.Sorted(slices.Values([]string{node, "localhost"}))) {
		t.Errorf("kubelet serving DNS SANs = %v", serving.DNSNames)
	}
	wantIPs := []string{"127.0.0.1", "192.0.2.10", "2001:db8::10"}
	var gotIPs []string
	for _, ip := range serving.IPAddresses {
		gotIPs = append(gotIPs, ip.String())
	}
	if slices.Sort(gotIPs); !slices.Equal(gotIPs, wantIPs) {
		t.Errorf("kubelet serving IP SANs = %v, want %v", gotIPs, wantIPs)
	}
	wantKey(t, "kubelet serving", serving, m.servingKey.Public())

	kubelet := parseCert(t, certs.KubeletClient)
	if _, err := kubelet.Verify(x509.VerifyOptions{Roots: clientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("kubelet client certificate does not verify against the client CA: %v", err)
	}
	wantSubject(t, "kubelet client", kubelet, "system:node:"+node, "system:nodes")
	wantKey(t, "kubelet client", kubelet, m.kubeletKey.Public())
	if _, err := kubelet.Verify(x509.VerifyOptions{Roots: serverCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("the kubelet client certificate verifies against the server CA")
	}

	proxy := parseCert(t, certs.KubeProxy)
	if _, err := proxy.Verify(x509.VerifyOptions{Roots: clientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("kube-proxy certificate does not verify against the client CA: %v", err)
	}
	wantSubject(t, "kube-proxy", proxy, "system:kube-proxy")
	wantKey(t, "kube-proxy", proxy, m.proxyKey.Public())

	secret := passwordSecret(t, c.client, node)
	if got := string(secret.Data["hash"]); got != passwordHash(m.password) {
		t.Errorf("stored hash = %q, want sha256 of the password", got)
	}
	if strings.Contains(secret.String(), m.password) {
		t.Error("the Secret holds the password itself")
	}
	if secret.Labels["ketch.io/node-password"] != "true" {
		t.Errorf("Secret labels = %v", secret.Labels)
	}

	// The same machine again (a restart, a renewal), asking only for its kubelet client
	// certificate: the same password is enough and the Secret stays as it is.
	req := pki.NodeCertRequest{NodeName: node, NodeIPs: ips, KubeletClientCSR: makeCSR(t, m.kubeletKey)}
	again, err := sc.SignNodeCerts(ctx, req, m.password)
	if err != nil {
		t.Fatalf("the same machine again: %v", err)
	}
	if again.KubeletClient == nil || again.KubeletServing != nil || again.KubeProxy != nil {
		t.Errorf("asked for the kubelet client certificate only, got serving %t, client %t, proxy %t", again.KubeletServing != nil, again.KubeletClient != nil, again.KubeProxy != nil)
	}
	if after := passwordSecret(t, c.client, node); after.ResourceVersion != secret.ResourceVersion {
		t.Errorf("the Secret changed on the same machine's second join")
	}
}

func wantSubject(t *testing.T, what string, cert *x509.Certificate, cn string, orgs ...string) {
	t.Helper()
	if cert.Subject.CommonName != cn || !slices.Equal(cert.Subject.Organization, orgs) {
		t.Errorf("%s subject = CN %q O %q, want CN %q O %q", what, cert.Subject.CommonName, cert.Subject.Organization, cn, orgs)
	}
}

func wantKey(t *testing.T, what string, cert *x509.Certificate, pub crypto.PublicKey) {
	t.Helper()
	if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
		t.Errorf("%s certificate is not for the machine's key", what)
	}
}

func passwordSecret(t *testing.T, client kubernetes.Interface, node string) *corev1.Secret {
	t.Helper()
	s, err := client.CoreV1().Secrets(metav1.NamespaceSystem).Get(context.Background(), node+".node-password.ketch", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("node %s's password Secret: %v", node, err)
	}
	return s
}

func noPasswordSecret(t *testing.T, client kubernetes.Interface, node string) {
	t.Helper()
	_, err := client.CoreV1().Secrets(metav1.NamespaceSystem).Get(context.Background(), node+".node-password.ketch", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("node %s's password Secret: %v, want none", node, err)
	}
}

// A node name belongs to the first machine that joined with it while its Node exists; once the
// Node is deleted another machine may take it.
func TestNodeNameTaken(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	node := nodeName("taken")
	first, second := newMachine(t), newMachine(t)
	sc := c.connect(t, c.agentToken(t, time.Hour))
	nodes := c.client.CoreV1().Nodes()

	if _, err := sc.SignNodeCerts(ctx, first.request(t, node), first.password); err != nil {
		t.Fatal(err)
	}
	// The first machine's kubelet registers its Node.
	if _, err := nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	_, err := sc.SignNodeCerts(ctx, second.request(t, node), second.password)
	refused := wantRefused(t, err, http.StatusForbidden)
	for _, want := range []string{"node name " + node + " belongs to another machine", "delete that node first (ketch kubectl delete node " + node + ")", "--node-name"} {
		if !strings.Contains(refused.Message, want) {
			t.Errorf("refusal %q does not say %q", refused.Message, want)
		}
	}
	if got := string(passwordSecret(t, c.client, node).Data["hash"]); got != passwordHash(first.password) {
		t.Error("the refused machine changed the stored password")
	}
	if _, err := sc.SignNodeCerts(ctx, first.request(t, node), first.password); err != nil {
		t.Errorf("the first machine again, while its Node exists: %v", err)
	}

	if err := nodes.Delete(ctx, node, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.SignNodeCerts(ctx, second.request(t, node), second.password); err != nil {
		t.Fatalf("another machine after the Node was deleted: %v", err)
	}
	if got := string(passwordSecret(t, c.client, node).Data["hash"]); got != passwordHash(second.password) {
		t.Error("the Secret does not hold the new machine's password hash")
	}
	// The name is now the second machine's.
	if _, err := nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = sc.SignNodeCerts(ctx, first.request(t, node), first.password)
	wantRefused(t, err, http.StatusForbidden)
}

// Requests that cannot be right get a 400 that says why, and claim no node name.
func TestNodeCertsBadRequests(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	m := newMachine(t)
	tok := c.serverToken
	good := func(node string) []byte { return mustJSON(t, m.request(t, node)) }

	withIPs := func(ips string) func(node string) []byte {
		return func(node string) []byte { return []byte(`{"NodeName":"` + node + `","NodeIPs":` + ips + `}`) }
	}
	fixed := func(body string) func(string) []byte { return func(string) []byte { return []byte(body) } }
	for _, tc := range []struct {
		name, node, password string
		body                 func(node string) []byte // default: a good request for node
		want                 string
	}{
		{name: "no password", node: nodeName("no-password"), want: "the request has no node password"},
		{name: "short password", node: nodeName("short-password"), password: strings.Repeat("p", 15), want: "the request has no node password"},
		{name: "upper case name", node: "Node-A", password: m.password, want: `node name "Node-A" is not valid`},
		{name: "underscore", node: "node_a", password: m.password, want: `node name "node_a" is not valid`},
		{name: "empty name", node: "", password: m.password, want: `node name "" is not valid`},
		{name: "long name", node: strings.Repeat("a", 254), password: m.password, want: "is not valid"},
		{name: "unspecified IPv4", node: nodeName("ip"), password: m.password, body: withIPs(`["192.0.2.1","0.0.0.0"]`), want: "node IP 0.0.0.0 is not usable"},
		{name: "unspecified IPv6", node: nodeName("ip"), password: m.password, body: withIPs(`["::"]`), want: "node IP :: is not usable"},
		{name: "empty IP", node: nodeName("ip"), password: m.password, body: withIPs(`[""]`), want: "is not usable"},
		{name: "not an IP", node: nodeName("ip"), password: m.password, body: withIPs(`["10.0.0.300"]`), want: "the request is not a node certificate request"},
		{name: "truncated JSON", node: nodeName("json"), password: m.password, body: fixed(`{"NodeName":`), want: "the request is not a node certificate request"},
		{name: "JSON array", node: nodeName("json"), password: m.password, body: fixed(`[]`), want: "the request is not a node certificate request"},
		{name: "empty body", node: nodeName("json"), password: m.password, body: fixed(``), want: "the request is not a node certificate request"},
		{name: "body over 64 KiB", node: nodeName("json"), password: m.password,
			body: func(node string) []byte {
				return []byte(`{"NodeName":"` + node + `","KubeProxyCSR":"` + strings.Repeat("A", 1<<16) + `"}`)
			}, want: "the request is not a node certificate request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := good
			if tc.body != nil {
				body = tc.body
			}
			r := c.raw(t, http.MethodPost, supervisor.PathNodeCerts, body(tc.node), creds{token: &tok, password: tc.password})
			if r.status != http.StatusBadRequest || !strings.Contains(r.body, tc.want) {
				t.Errorf("answer = %d %q, want 400 saying %q", r.status, r.body, tc.want)
			}
			if len(validation.IsDNS1123Subdomain(tc.node)) == 0 {
				noPasswordSecret(t, c.client, tc.node)
			}
		})
	}

	// What the agent sees: a refusal it does not retry.
	_, err := c.connect(t, tok).SignNodeCerts(ctx, m.request(t, nodeName("short")), "too-short")
	wantRefused(t, err, http.StatusBadRequest)
	// A 16-character password is enough.
	if _, err := c.connect(t, tok).SignNodeCerts(ctx, m.request(t, nodeName("password-16")), strings.Repeat("p", 16)); err != nil {
		t.Errorf("a 16-character password: %v", err)
	}
}

// A node's own client certificate renews its certificates without a password, and only its own;
// no other certificate is a node's.
func TestNodeClientCertificate(t *testing.T) {
	c := newCluster(t)
	nodeA, nodeB := nodeName("cert-a"), nodeName("cert-b")
	certA := nodeClientCert(t, c.pki, nodeA)
	m := newMachine(t)

	t.Run("own certificates", func(t *testing.T) {
		r := c.raw(t, http.MethodPost, supervisor.PathNodeCerts, mustJSON(t, m.request(t, nodeA)), creds{cert: certA})
		if r.status != http.StatusOK {
			t.Fatalf("node A renewing its own certificates = %d %q", r.status, r.body)
		}
		var certs pki.NodeCerts
		if err := json.Unmarshal([]byte(r.body), &certs); err != nil {
			t.Fatal(err)
		}
		wantSubject(t, "kubelet client", parseCert(t, certs.KubeletClient), "system:node:"+nodeA, "system:nodes")
		// No password was involved: none is stored.
		noPasswordSecret(t, c.client, nodeA)
		if r := c.raw(t, http.MethodGet, supervisor.PathConfig, nil, creds{cert: certA}); r.status != http.StatusOK {
			t.Errorf("node A getting the agent settings = %d %q", r.status, r.body)
		}
	})
	t.Run("another node's", func(t *testing.T) {
		r := c.raw(t, http.MethodPost, supervisor.PathNodeCerts, mustJSON(t, m.request(t, nodeB)), creds{cert: certA, password: m.password})
		if want := "node " + nodeA + " may only renew its own certificates"; r.status != http.StatusForbidden || r.body != want {
			t.Errorf("node A asking for node B's certificates = %d %q, want 403 %q", r.status, r.body, want)
		}
		noPasswordSecret(t, c.client, nodeB)
	})

	other := newPKI(t)
	for name, cert := range map[string]*tls.Certificate{
		"node certificate of another cluster": nodeClientCert(t, other, nodeA),
		"admin certificate":                   loadPair(t, c.pki.AdminCert, c.pki.AdminKey),
		"kube-proxy certificate":              loadPair(t, c.pki.KubeProxyCert, c.pki.KubeProxyKey),
		"kube-apiserver serving certificate":  loadPair(t, c.pki.APIServerCert, c.pki.APIServerKey),
		"node name without system:nodes":      signedByCA(t, c.pki.ClientCA, c.pki.ClientCAKey, "system:node:"+nodeA, nil, x509.ExtKeyUsageClientAuth),
		"system:nodes without a node name":    signedByCA(t, c.pki.ClientCA, c.pki.ClientCAKey, "system:node:", []string{"system:nodes"}, x509.ExtKeyUsageClientAuth),
		"node name and another group":         signedByCA(t, c.pki.ClientCA, c.pki.ClientCAKey, "system:node:"+nodeA, []string{"system:nodes", "system:masters"}, x509.ExtKeyUsageClientAuth),
		"node certificate for serving only":   signedByCA(t, c.pki.ClientCA, c.pki.ClientCAKey, "system:node:"+nodeA, []string{"system:nodes"}, x509.ExtKeyUsageServerAuth),
	} {
		t.Run(name, func(t *testing.T) {
			wantBare401(t, c.raw(t, http.MethodPost, supervisor.PathNodeCerts, mustJSON(t, m.request(t, nodeA)), creds{cert: cert}))
			wantBare401(t, c.raw(t, http.MethodGet, supervisor.PathConfig, nil, creds{cert: cert}))
		})
	}
}

func loadPair(t *testing.T, certFile, keyFile string) *tls.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &pair
}

// Retryable tells what may pass by itself (no server yet, a server not ready) from what will
// not (a refusal, a CA that is not the token's, a cancelled join), through the wrapping the
// client adds.
func TestRetryable(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()

	_, err := supervisor.Connect(ctx, closedURL(t), c.serverToken)
	if err == nil || !supervisor.Retryable(err) {
		t.Errorf("no server listening: %v, Retryable %v; want retryable", err, supervisor.Retryable(err))
	}
	var refused *supervisor.RefusedError
	if errors.As(err, &refused) {
		t.Errorf("no server listening gave a refusal: %v", err)
	}

	_, err = supervisor.Connect(ctx, newCluster(t).url, c.serverToken)
	if !errors.Is(err, supervisor.ErrCAMismatch) || supervisor.Retryable(err) {
		t.Errorf("another cluster's CA: %v, Retryable %v; want ErrCAMismatch, not retryable", err, supervisor.Retryable(err))
	}

	wrong := c.serverToken
	wrong.Password += "x"
	_, err = c.connect(t, wrong).Config(ctx)
	wantRefused(t, err, http.StatusUnauthorized)

	m := newMachine(t)
	_, err = c.connect(t, c.serverToken).SignNodeCerts(ctx, m.request(t, "Bad_Name"), m.password)
	wantRefused(t, err, http.StatusBadRequest)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err = supervisor.Connect(cancelled, c.url, c.serverToken); err == nil || supervisor.Retryable(err) {
		t.Errorf("a cancelled join: %v, Retryable %v; want not retryable", err, supervisor.Retryable(err))
	}

	if _, err := supervisor.Connect(ctx, "http://"+strings.TrimPrefix(c.url, "https://"), c.serverToken); err == nil || supervisor.Retryable(err) {
		t.Errorf("an http:// server URL: %v, Retryable %v; want not retryable", err, supervisor.Retryable(err))
	}
}

// While kube-apiserver cannot be reached (it restarts), a join is not refused but told to come
// back: 503, which the agent retries.
func TestAPIServerUnreachable(t *testing.T) {
	cfg := rest.CopyConfig(apiServer(t).Config)
	cfg.Host = closedURL(t)
	cfg.Timeout = 5 * time.Second
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := newClusterWith(t, client)
	ctx := context.Background()
	m := newMachine(t)

	_, err = c.connect(t, c.serverToken).SignNodeCerts(ctx, m.request(t, nodeName("unreachable")), m.password)
	if refused := wantRefused(t, err, http.StatusServiceUnavailable); !strings.Contains(refused.Message, "reading node") {
		t.Errorf("refusal %q does not say what failed", refused.Message)
	}

	// An agent token cannot be checked now: that is not a wrong token.
	agent := token.Token{CAHash: c.serverToken.CAHash, Username: "abcdef", Password: "0123456789abcdef"}
	_, err = c.connect(t, agent).Config(ctx)
	if refused := wantRefused(t, err, http.StatusServiceUnavailable); refused.Message != "the server cannot check the token yet; try again" {
		t.Errorf("refusal %q", refused.Message)
	}
	_, err = c.connect(t, agent).SignNodeCerts(ctx, m.request(t, nodeName("unreachable")), m.password)
	wantRefused(t, err, http.StatusServiceUnavailable)
}

// Before kube-system exists (a new cluster whose kube-apiserver serves before its
// system-namespaces hook has run) a join is told to come back, and then succeeds.
//
// The test removes kube-system from the datastore itself: the API refuses to delete it. The
// apiserver's system-namespaces controller puts it back once a minute; should it do so during
// the test, the test tries again.
func TestBeforeKubeSystemExists(t *testing.T) {
	api := apiServer(t)
	c := newCluster(t)
	ctx := context.Background()
	m := newMachine(t)
	sc := c.connect(t, c.serverToken)
	namespaces := c.client.CoreV1().Namespaces()
	t.Cleanup(func() {
		_, err := namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: metav1.NamespaceSystem}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Errorf("recreating kube-system: %v", err)
		}
	})

	var refused *supervisor.RefusedError
	var node string
	for attempt := 0; refused == nil; attempt++ {
		if attempt == 5 {
			t.Fatal("kube-system came back before every request")
		}
		if _, err := api.Etcd.Delete(ctx, api.StoragePrefix+"/namespaces/"+metav1.NamespaceSystem); err != nil {
			t.Fatal(err)
		}
		err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := namespaces.Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Fatalf("kube-apiserver still has kube-system: %v", err)
		}
		node = nodeName("no-kube-system")
		_, err = sc.SignNodeCerts(ctx, m.request(t, node), m.password)
		if err == nil {
			// Fine if the password was stored: kube-system came back (or kube-apiserver's
			// admission had not yet seen it go) in time for the request.
			passwordSecret(t, c.client, node)
			t.Logf("attempt %d: kube-system was back in time for the request", attempt)
			continue
		}
		refused = wantRefused(t, err, http.StatusServiceUnavailable)
	}
	if want := `namespaces "kube-system" not found`; !strings.Contains(refused.Message, want) {
		t.Errorf("refusal %q does not say %q", refused.Message, want)
	}

	if _, err := namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: metav1.NamespaceSystem}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := sc.SignNodeCerts(ctx, m.request(t, node), m.password); err != nil {
		t.Fatalf("the agent's retry once kube-system exists: %v", err)
	}
	if got := string(passwordSecret(t, c.client, node).Data["hash"]); got != passwordHash(m.password) {
		t.Error("the retry did not store the password")
	}
}

// A joining server gets the cluster's bootstrap data with the server token only; a server that
// cannot be joined says why.
func TestServerJoin(t *testing.T) {
	ctx := context.Background()
	plain := newCluster(t)
	_, err := plain.connect(t, plain.serverToken).ServerJoin(ctx)
	if r := wantRefused(t, err, http.StatusConflict); !strings.Contains(r.Message, "restart it with --cluster-init") {
		t.Errorf("joining a bbolt server: %q", r.Message)
	}

	want := &supervisor.ServerJoin{Bootstrap: &bootstrap.Bundle{Files: map[string][]byte{"server-ca.crt": []byte("CA")}}, EtcdClientURLs: []string{"https://192.0.2.1:2379"}}
	c := newClusterWith(t, apiServer(t).Client, func(o *supervisor.Options) {
		o.ServerJoin = func(context.Context) (*supervisor.ServerJoin, error) { return want, nil }
	})
	got, err := c.connect(t, c.serverToken).ServerJoin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Bootstrap.Files["server-ca.crt"]) != "CA" || got.EtcdClientURLs[0] != want.EtcdClientURLs[0] {
		t.Errorf("ServerJoin = %+v", got)
	}
	_, err = c.connect(t, c.agentToken(t, time.Hour)).ServerJoin(ctx)
	if r := wantRefused(t, err, http.StatusForbidden); !strings.Contains(r.Message, "not an agent token") {
		t.Errorf("an agent token: %q", r.Message)
	}
	wrong := c.serverToken
	wrong.Password = "not-the-" + wrong.Password
	_, err = c.connect(t, wrong).ServerJoin(ctx)
	wantRefused(t, err, http.StatusUnauthorized)
}
