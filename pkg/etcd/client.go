package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// ClientConfig is how to reach an etcd cluster: client URLs and the TLS files, any of which may
// be empty (plain http, or no client certificate).
type ClientConfig struct {
	Endpoints                 []string
	CAFile, CertFile, KeyFile string
}

// Describe names the endpoints and TLS files, for errors a user must act on.
func (c ClientConfig) Describe() string {
	var files []string
	for _, f := range []struct{ flag, path string }{{"CA", c.CAFile}, {"certificate", c.CertFile}, {"key", c.KeyFile}} {
		if f.path != "" {
			files = append(files, f.flag+" "+f.path)
		}
	}
	s := strings.Join(c.Endpoints, ",")
	if len(files) > 0 {
		s += " (" + strings.Join(files, ", ") + ")"
	}
	return s
}

// NewClient makes a client; it connects lazily, so an unreachable cluster shows in the first
// request, not here.
func NewClient(c ClientConfig) (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints: c.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		DialKeepAliveTime: 10 * time.Second, DialKeepAliveTimeout: 5 * time.Second,
	}
	if c.CAFile != "" || c.CertFile != "" {
		info := transport.TLSInfo{CertFile: c.CertFile, KeyFile: c.KeyFile, TrustedCAFile: c.CAFile}
		tlsCfg, err := info.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("the TLS files for etcd at %s: %w", c.Describe(), err)
		}
		cfg.TLS = tlsCfg
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", c.Describe(), err)
	}
	return cli, nil
}

// WaitReachable returns once the cluster answers a linearizable read, or ctx ends. Each new
// reason it cannot be reached yet goes to report, which tells the user.
func WaitReachable(ctx context.Context, cli *clientv3.Client, c ClientConfig, report func(string)) error {
	var last string
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := cli.Get(rctx, "health")
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("etcd at %s did not answer: %w (last: %v)", c.Describe(), context.Cause(ctx), err)
		}
		msg := fmt.Sprintf("etcd at %s does not answer yet, retrying: %v", c.Describe(), unwrapDeadline(err))
		if msg != last {
			report(msg)
			last = msg
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

// unwrapDeadline says what a timed-out request means here: nothing answered.
func unwrapDeadline(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("no answer within 5s (is it running, and are the URL and TLS files right?)")
	}
	return err
}
