package supervisor

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	certutil "k8s.io/client-go/util/cert"

	"github.com/ketch-k8s/ketch/pkg/pki"
	"github.com/ketch-k8s/ketch/pkg/token"
)

// ErrCAMismatch is a server whose CA is not the one the token names.
var ErrCAMismatch = errors.New("the server's CA does not match the token")

// errServerURL is a server URL Connect cannot use; retrying cannot make it usable.
var errServerURL = errors.New("not an https URL")

// Client is an agent's connection to its server's supervisor, trusting only the CA the token
// names.
type Client struct {
	base     string
	cred     token.Token
	http     *http.Client
	CABundle []byte
}

// Connect downloads the server's CA and checks it against the token before anything secret is
// sent; from then on the server's certificate must verify against that CA.
func Connect(ctx context.Context, serverURL string, tok token.Token) (*Client, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("--server %q must be an https URL such as https://10.0.0.1:6443: %w", serverURL, errServerURL)
	}
	base := strings.TrimSuffix(serverURL, "/")
	// The CA is not known yet: the token's hash authenticates what this unverified connection
	// returns.
	insecure := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
	}}
	defer insecure.CloseIdleConnections()
	bundle, header, err := get(ctx, insecure, base+PathCACerts)
	if err != nil {
		return nil, fmt.Errorf("fetching the server's CA: %w", err)
	}
	if !tok.VerifyCA(bundle, header.Get(HeaderCAProof)) {
		return nil, fmt.Errorf("%w: the token is for another cluster, or something between here and %s answers in its place", ErrCAMismatch, u.Host)
	}
	pool, err := certutil.NewPoolFromBytes(bundle)
	if err != nil {
		return nil, fmt.Errorf("the server's CA bundle: %w", err)
	}
	return &Client{base: base, cred: tok, CABundle: bundle, http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}}, nil
}

// Config returns the cluster-wide settings for agents.
func (c *Client) Config(ctx context.Context) (*AgentConfig, error) {
	body, err := c.do(ctx, http.MethodGet, PathConfig, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("getting the cluster's agent settings: %w", err)
	}
	var cfg AgentConfig
	if err := json.Unmarshal(body, &cfg); err != nil {
		return nil, fmt.Errorf("the server's agent settings: %w", err)
	}
	return &cfg, nil
}

// ServerJoin gets what a joining server needs (the server token only opens it).
func (c *Client) ServerJoin(ctx context.Context) (*ServerJoin, error) {
	body, err := c.do(ctx, http.MethodGet, PathServerJoin, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("getting the cluster's bootstrap data: %w", err)
	}
	var join ServerJoin
	if err := json.Unmarshal(body, &join); err != nil || join.Bootstrap == nil {
		return nil, fmt.Errorf("the server's bootstrap data does not parse: %v", err)
	}
	return &join, nil
}

// SignNodeCerts has the server sign the node's certificates; password is the node's password.
func (c *Client) SignNodeCerts(ctx context.Context, req pki.NodeCertRequest, password string) (*pki.NodeCerts, error) {
	payload, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	body, err := c.do(ctx, http.MethodPost, PathNodeCerts, payload, http.Header{HeaderNodePassword: {password}, "Content-Type": {"application/json"}})
	if err != nil {
		return nil, fmt.Errorf("getting node %s's certificates: %w", req.NodeName, err)
	}
	var certs pki.NodeCerts
	if err := json.Unmarshal(body, &certs); err != nil {
		return nil, fmt.Errorf("the server's certificate answer: %w", err)
	}
	return &certs, nil
}

func (c *Client) do(ctx context.Context, method, path string, payload []byte, header http.Header) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.SetBasicAuth(c.cred.Username, c.cred.Password)
	body, _, err := send(c.http, req)
	return body, err
}

func get(ctx context.Context, client *http.Client, url string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	return send(client, req)
}

// RefusedError is the server's refusal, with what it said.
type RefusedError struct {
	Status  int
	Message string
}

func (e *RefusedError) Error() string {
	if e.Status == http.StatusUnauthorized {
		return "the server refused the token: it is wrong, expired or deleted (get a new one with `ketch token create` on the server)"
	}
	return fmt.Sprintf("the server refused: %s (HTTP %d)", e.Message, e.Status)
}

// Retryable is whether err may pass by itself: the server is unreachable or not ready, as
// opposed to a refusal.
func Retryable(err error) bool {
	var refused *RefusedError
	if errors.As(err, &refused) {
		return refused.Status >= 500
	}
	return !errors.Is(err, ErrCAMismatch) && !errors.Is(err, errServerURL) && !errors.Is(err, context.Canceled)
}

// Retry runs call until it succeeds, fails for good, or ctx ends. A server that cannot be
// reached or is not ready yet is waited for, as the nodes of a cluster that boots all at once
// must, and each new reason goes to say; a refusal is final.
func Retry(ctx context.Context, say func(format string, a ...any), server string, call func() error) error {
	var last string
	for {
		err := call()
		if err == nil || !Retryable(err) {
			return err
		}
		if msg := err.Error(); msg != last {
			say("waiting for the server at %s: %v", server, err)
			last = msg
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("joining %s: %w", server, context.Cause(ctx))
		case <-time.After(2 * time.Second):
		}
	}
}

func send(client *http.Client, req *http.Request) ([]byte, http.Header, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach the server: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the server's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, &RefusedError{Status: resp.StatusCode, Message: strings.TrimSpace(string(body))}
	}
	return body, resp.Header, nil
}
