// Package supervisor is the HTTPS API a joining agent talks to. It is served on kube-apiserver's
// own port, in front of kube-apiserver's handler chain, so that an agent needs only the server's
// URL: /cacerts and /ping are open to anyone; /v1-ketch/... needs a join token or the node's
// own client certificate; /dashboard/ is the dashboard addon's, which logs its users in itself;
// every other path is kube-apiserver's.
package supervisor

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/bootstrap"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/pki"
	"github.com/ketch-k8s/ketch/pkg/token"
)

// Paths of the supervisor API.
const (
	PathCACerts   = "/cacerts"
	PathPing      = "/ping"
	PathConfig    = "/v1-ketch/config"
	PathNodeCerts = "/v1-ketch/node-certs"
	PathDashboard = "/dashboard"
	// PathServerJoin gives a joining server the cluster's bootstrap data; only the server
	// token opens it.
	PathServerJoin = "/v1-ketch/server-join"
	// HeaderCAProof carries, with /cacerts, the server's proof that it knows the server secret
	// (token.CAProof), for nodes that join with the bare secret.
	HeaderCAProof = "Ketch-CA-Proof"
	// HeaderNodePassword carries the joining machine's node password.
	HeaderNodePassword = "Ketch-Node-Password"
	minPasswordLength  = 16
)

// AgentConfig is the cluster-wide settings a joining agent takes from its server.
type AgentConfig = config.ClusterSettings

// NodeCertsRequest asks for a node's certificates.
type NodeCertsRequest = pki.NodeCertRequest

// Options is what the supervisor serves and checks against.
type Options struct {
	// CABundle is served at /cacerts: the CA that signs kube-apiserver's serving certificate.
	CABundle []byte
	// ClientCA verifies node client certificates.
	ClientCA    *x509.CertPool
	ServerToken token.Token
	// Client reads agent tokens and keeps node passwords (an admin client of this server).
	Client kubernetes.Interface
	Sign   func(pki.NodeCertRequest) (*pki.NodeCerts, error)
	Agent  AgentConfig
	// Dashboard, if set, serves /dashboard and everything below it (the dashboard addon,
	// which logs its users in itself).
	Dashboard http.Handler
	// ServerJoin, if set, is what a server joining this one's embedded etcd gets; unset, this
	// server cannot be joined (it runs the bbolt datastore, or an external etcd).
	ServerJoin func(context.Context) (*ServerJoin, error)
}

// ServerJoin is what a joining server gets: the cluster's bootstrap data and where its etcd
// members take clients.
type ServerJoin struct {
	Bootstrap      *bootstrap.Bundle `json:"bootstrap"`
	EtcdClientURLs []string          `json:"etcdClientURLs"`
}

// Supervisor serves the join API.
type Supervisor struct {
	opts Options
	mux  *http.ServeMux
}

// New builds the supervisor.
func New(opts Options) *Supervisor {
	s := &Supervisor{opts: opts, mux: http.NewServeMux()}
	caProof := token.CAProof(opts.ServerToken.Password, opts.CABundle)
	s.mux.HandleFunc("GET "+PathCACerts, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set(HeaderCAProof, caProof)
		w.Write(opts.CABundle)
	})
	s.mux.HandleFunc("GET "+PathPing, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("pong"))
	})
	s.mux.Handle("GET "+PathConfig, s.authenticated(func(w http.ResponseWriter, r *http.Request, _ identity) {
		writeJSON(w, opts.Agent)
	}))
	s.mux.Handle("POST "+PathNodeCerts, s.authenticated(s.nodeCerts))
	s.mux.Handle("GET "+PathServerJoin, s.authenticated(s.serverJoin))
	return s
}

// Wrap serves the supervisor's paths and hands every other request to next (kube-apiserver's
// handler chain, which authenticates it its own way).
func (s *Supervisor) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == PathCACerts || p == PathPing || strings.HasPrefix(p, "/v1-ketch/"):
			s.mux.ServeHTTP(w, r)
		case s.opts.Dashboard != nil && (p == PathDashboard || strings.HasPrefix(p, PathDashboard+"/")):
			s.opts.Dashboard.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// identity is who a request authenticated as: a join token, or a node by its certificate.
type identity struct {
	token string // the token's username (server, or an agent token's ID)
	node  string
}

func (s *Supervisor) authenticated(h func(http.ResponseWriter, *http.Request, identity)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.authenticate(r)
		if err != nil && !errors.Is(err, token.ErrRefused) {
			// An agent token could not be looked up (kube-apiserver is not ready, or restarts):
			// that is no refusal, and the agent should come back.
			klog.InfoS("Could not check a join request's token", "remote", r.RemoteAddr, "path", r.URL.Path, "err", err)
			http.Error(w, "the server cannot check the token yet; try again", http.StatusServiceUnavailable)
			return
		}
		if err != nil {
			// The client learns nothing about why; the operator does.
			klog.InfoS("Refused a join request", "remote", r.RemoteAddr, "path", r.URL.Path, "reason", err)
			w.Header().Set("WWW-Authenticate", `Basic realm="ketch"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h(w, r, id)
	})
}

func (s *Supervisor) authenticate(r *http.Request) (identity, error) {
	if user, pass, ok := r.BasicAuth(); ok {
		if user == token.ServerUser {
			if !token.Equal(pass, s.opts.ServerToken.Password) {
				return identity{}, fmt.Errorf("%w: wrong server token secret", token.ErrRefused)
			}
			return identity{token: user}, nil
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if err := token.Validate(ctx, s.opts.Client, user, pass, time.Now()); err != nil {
			return identity{}, err
		}
		return identity{token: user}, nil
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return s.nodeIdentity(r.TLS.PeerCertificates)
	}
	return identity{}, fmt.Errorf("%w: no credentials", token.ErrRefused)
}

// nodeIdentity accepts a kubelet client certificate of the cluster. kube-apiserver's TLS
// listener only requests client certificates and leaves verifying them to its handlers, so
// the supervisor verifies it here.
func (s *Supervisor) nodeIdentity(chain []*x509.Certificate) (identity, error) {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: s.opts.ClientCA, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return identity{}, fmt.Errorf("%w: client certificate: %v", token.ErrRefused, err)
	}
	name, ok := strings.CutPrefix(leaf.Subject.CommonName, "system:node:")
	if !ok || name == "" || len(leaf.Subject.Organization) != 1 || leaf.Subject.Organization[0] != "system:nodes" {
		return identity{}, fmt.Errorf("%w: client certificate of %q is not a node's", token.ErrRefused, leaf.Subject.CommonName)
	}
	return identity{node: name}, nil
}

func (s *Supervisor) nodeCerts(w http.ResponseWriter, r *http.Request, id identity) {
	var req NodeCertsRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		http.Error(w, "the request is not a node certificate request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if msgs := validation.IsDNS1123Subdomain(req.NodeName); len(msgs) > 0 {
		http.Error(w, fmt.Sprintf("node name %q is not valid: %s", req.NodeName, strings.Join(msgs, "; ")), http.StatusBadRequest)
		return
	}
	for _, ip := range req.NodeIPs {
		if ip.To16() == nil || ip.IsUnspecified() {
			http.Error(w, fmt.Sprintf("node IP %v is not usable", ip), http.StatusBadRequest)
			return
		}
	}
	switch {
	case id.node != "":
		if id.node != req.NodeName {
			klog.InfoS("Refused a certificate request for another node", "remote", r.RemoteAddr, "node", id.node, "requested", req.NodeName)
			http.Error(w, fmt.Sprintf("node %s may only renew its own certificates", id.node), http.StatusForbidden)
			return
		}
	default:
		password := r.Header.Get(HeaderNodePassword)
		if len(password) < minPasswordLength {
			http.Error(w, "the request has no node password", http.StatusBadRequest)
			return
		}
		if err := s.checkNodePassword(r.Context(), req.NodeName, password); err != nil {
			// Before kube-system exists, and while kube-apiserver restarts, the agent should retry.
			status := http.StatusServiceUnavailable
			if errors.Is(err, errNameTaken) {
				status = http.StatusForbidden
			}
			klog.InfoS("Refused a node's join", "remote", r.RemoteAddr, "node", req.NodeName, "token", id.token, "reason", err)
			http.Error(w, err.Error(), status)
			return
		}
	}
	certs, err := s.opts.Sign(req)
	if err != nil {
		klog.ErrorS(err, "Signing node certificates", "node", req.NodeName)
		http.Error(w, "the server could not sign the certificates; see its log", http.StatusInternalServerError)
		return
	}
	klog.InfoS("Issued node certificates", "node", req.NodeName, "ips", req.NodeIPs, "remote", r.RemoteAddr)
	writeJSON(w, certs)
}

func (s *Supervisor) serverJoin(w http.ResponseWriter, r *http.Request, id identity) {
	if id.token != token.ServerUser {
		klog.InfoS("Refused a server join without the server token", "remote", r.RemoteAddr, "token", id.token, "node", id.node)
		http.Error(w, "a server joins with the cluster's server token (<data-dir>/server/token on the first server), not an agent token", http.StatusForbidden)
		return
	}
	if s.opts.ServerJoin == nil {
		http.Error(w, "this server cannot be joined: it runs the bbolt datastore, which one server uses alone (restart it with --cluster-init to move its data into embedded etcd), or an external etcd (give the joining server the same --datastore-endpoint instead of --server)", http.StatusConflict)
		return
	}
	join, err := s.opts.ServerJoin(r.Context())
	if err != nil {
		klog.ErrorS(err, "Preparing a server join", "remote", r.RemoteAddr)
		http.Error(w, "the server could not prepare the join: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	klog.InfoS("Gave a joining server the cluster's bootstrap data", "remote", r.RemoteAddr)
	writeJSON(w, join)
}

var errNameTaken = errors.New("node name taken")

// checkNodePassword ties a node name to the first machine that joined with it, as k3s does: a
// Secret keeps the hash of that machine's password. Another machine may take the name only once
// the Node is deleted.
func (s *Supervisor) checkNodePassword(ctx context.Context, node, password string) error {
	secrets := s.opts.Client.CoreV1().Secrets(metav1.NamespaceSystem)
	name := node + ".node-password.ketch"
	hash := hashPassword(password)
	existing, err := secrets.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceSystem, Labels: map[string]string{"ketch.io/node-password": "true"}},
			Data:       map[string][]byte{"hash": []byte(hash)},
		}
		if _, err := secrets.Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("storing node %s's password: %w", node, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading node %s's password: %w", node, err)
	}
	if token.Equal(string(existing.Data["hash"]), hash) {
		return nil
	}
	if _, err := s.opts.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		if err != nil {
			return fmt.Errorf("looking up node %s: %w", node, err)
		}
		return fmt.Errorf("%w: node name %s belongs to another machine; delete that node first (ketch kubectl delete node %s) or give this machine another --node-name", errNameTaken, node, node)
	}
	existing.Data = map[string][]byte{"hash": []byte(hash)}
	if _, err := secrets.Update(ctx, existing, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("storing node %s's password: %w", node, err)
	}
	klog.InfoS("A new machine took the name of a deleted node", "node", node)
	return nil
}

func hashPassword(p string) string {
	sum := sha256.Sum256([]byte(p))
	return hex.EncodeToString(sum[:])
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		klog.ErrorS(err, "Writing a supervisor response")
	}
}
