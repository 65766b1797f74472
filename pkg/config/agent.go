package config

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/ketch-k8s/ketch/pkg/token"
)

// Agent is everything `ketch agent` is told. The cluster-wide settings (CIDRs, DNS, the
// flannel backend) come from the server when the agent joins.
type Agent struct {
	Node
	ServerURL string
	Token     token.Token
}

// AgentRaw is the agent's settings before parsing.
type AgentRaw struct {
	NodeRaw
	ServerURL, Token, TokenFile string
}

// ParseAgent turns raw settings into an Agent, reporting every problem at once.
func ParseAgent(raw AgentRaw) (*Agent, error) {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	a := &Agent{Node: parseNode(raw.NodeRaw, fail), ServerURL: raw.ServerURL}
	if u, err := url.Parse(raw.ServerURL); raw.ServerURL == "" || err != nil || u.Scheme != "https" || u.Host == "" {
		fail("--server %q must be the server's https URL, such as https://10.0.0.1:6443", raw.ServerURL)
	}
	switch secret := readToken(raw.Token, raw.TokenFile, fail); {
	case secret == "" && raw.TokenFile == "":
		fail("ketch agent needs a join token: --token, --token-file or KETCH_TOKEN (the server's <data-dir>/server/token, or one from `ketch token create` on the server)")
	case secret != "":
		t, err := token.Parse(secret)
		if err != nil {
			fail("the join token: %v", err)
		}
		a.Token = t
	}
	return a, errors.Join(errs...)
}
