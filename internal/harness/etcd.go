package harness

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// WaitEtcd waits until the etcd API at endpoint (http://HOST:PORT or unix://PATH) accepts
// connections and answers Status, exited closes (the process serving it has exited), or ctx
// ends. It dials before creating a client because gRPC backs off for a second after a refused
// connection, which would add that second to every start.
func WaitEtcd(ctx context.Context, endpoint string, exited <-chan struct{}) error {
	network, address := "tcp", strings.TrimPrefix(endpoint, "http://")
	if strings.HasPrefix(endpoint, "unix://") {
		network, address = "unix", strings.TrimPrefix(endpoint, "unix://")
	}
	var d net.Dialer
	for {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := d.DialContext(dctx, network, address)
		cancel()
		if err == nil {
			conn.Close()
			break
		}
		if err := waitRetry(ctx, exited, "no connection", err); err != nil {
			return err
		}
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("etcd client for %s: %w", endpoint, err)
	}
	defer c.Close()
	for {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err = c.Status(sctx, endpoint)
		cancel()
		if err == nil {
			return nil
		}
		if err := waitRetry(ctx, exited, "no answer", err); err != nil {
			return err
		}
	}
}

// waitRetry pauses before the next attempt of WaitEtcd, or says why there is none.
func waitRetry(ctx context.Context, exited <-chan struct{}, what string, last error) error {
	select {
	case <-exited:
		return fmt.Errorf("process exited: %w", last)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w (%v)", what, ctx.Err(), last)
	case <-time.After(20 * time.Millisecond):
		return nil
	}
}

// FreeLoopbackAddr returns a 127.0.0.1:PORT that was free a moment ago. The port is released
// before use, so another process could take it; on a test machine that is rare enough not to
// matter.
func FreeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
