package cmd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/ketch-k8s/ketch/internal/harness"
)

// etcdServerCmd is hidden: the datastore bench re-execs itself with it so that etcd gets its
// own process, whose memory is measured exactly like ketch's.
var etcdServerCmd = &command{
	name:     "etcd-server",
	synopsis: "etcd-server --data-dir DIR --listen-client-urls URLS [--listen-peer-urls URL]",
	run:      runEtcdServer,
}

// runEtcdServer serves a single-member etcd with default settings (fsync on, default
// snapshot count and quota) until SIGTERM, using the same command line as `ketch datastore`.
func runEtcdServer(args []string) error {
	flags := newFlags("etcd-server")
	dataDir := flags.String("data-dir", "", "data directory")
	clientURLs := flags.String("listen-client-urls", "", "comma-separated client URLs")
	peerURLs := flags.String("listen-peer-urls", "", "peer URL (default: a free port on 127.0.0.1)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" || *clientURLs == "" {
		return errors.New("etcd-server: --data-dir and --listen-client-urls are required")
	}

	cfg := embed.NewConfig()
	cfg.Dir = *dataDir
	// The bench only shows this process's output when something fails.
	cfg.LogLevel = "error"
	cu, err := parseURLs(*clientURLs)
	if err != nil {
		return fmt.Errorf("etcd-server: --listen-client-urls: %w", err)
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = cu, cu
	if *peerURLs == "" {
		addr, err := harness.FreeLoopbackAddr()
		if err != nil {
			return fmt.Errorf("etcd-server: pick peer port: %w", err)
		}
		*peerURLs = "http://" + addr
	}
	pu, err := parseURLs(*peerURLs)
	if err != nil {
		return fmt.Errorf("etcd-server: --listen-peer-urls: %w", err)
	}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = pu, pu
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("etcd-server: start: %w", err)
	}
	defer e.Close()

	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(time.Minute):
		return errors.New("etcd-server: not ready after 1m")
	case <-ctx.Done():
		return nil
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-e.Err():
		return fmt.Errorf("etcd-server: %w", err)
	}
}

func parseURLs(s string) ([]url.URL, error) {
	var out []url.URL
	for _, part := range strings.Split(s, ",") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("parse %q: %w", part, err)
		}
		out = append(out, *u)
	}
	return out, nil
}
