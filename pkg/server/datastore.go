package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/bootstrap"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/datastore"
	"github.com/ketch-k8s/ketch/pkg/etcd"
	"github.com/ketch-k8s/ketch/pkg/lifecycle"
	"github.com/ketch-k8s/ketch/pkg/pki"
	"github.com/ketch-k8s/ketch/pkg/supervisor"
	"github.com/ketch-k8s/ketch/pkg/token"
)

// store is the datastore this server's kube-apiserver uses, once it serves.
type store struct {
	kind config.DatastoreKind
	// api is what kube-apiserver is given.
	api etcd.ClientConfig
	// cli is ketch's own client of an etcd cluster (nil on bbolt).
	cli *clientv3.Client
	// tls is the embedded member's TLS (nil otherwise).
	tls *pki.Etcd
}

// startDatastore starts or reaches the server's datastore, leaving what runs to the node's
// "datastore" stage; on etcd it also makes sure that the cluster's shared CAs are in the tls dir.
func startDatastore(ctx context.Context, n *lifecycle.Node, cfg *config.Server) (*store, error) {
	paths := cfg.Paths()
	switch cfg.DatastoreKind() {
	case config.External:
		return startExternal(ctx, n, cfg)
	case config.Embedded:
		return startEmbedded(ctx, n, cfg)
	}
	ds, err := datastore.Start(datastore.Config{
		DataDir:          paths.DatastoreDir(),
		ListenClientURLs: []string{"unix://" + paths.DatastoreSocket()},
		Name:             cfg.NodeName,
		HistoryRevisions: datastore.DefaultHistoryRevisions,
	})
	if err != nil {
		return nil, err
	}
	n.Go(n.Stage("datastore"), "the datastore", ds.Run)
	return &store{kind: config.Bbolt, api: etcd.ClientConfig{Endpoints: []string{"unix://" + paths.DatastoreSocket()}}}, nil
}

// startExternal waits for the external etcd, then takes the cluster's CAs from it, or stores
// this server's there if it is the first.
func startExternal(ctx context.Context, n *lifecycle.Node, cfg *config.Server) (*store, error) {
	cc := etcd.ClientConfig{Endpoints: cfg.Datastore.Endpoints, CAFile: cfg.Datastore.CAFile, CertFile: cfg.Datastore.CertFile, KeyFile: cfg.Datastore.KeyFile}
	cli, err := etcd.NewClient(cc)
	if err != nil {
		return nil, err
	}
	n.Go(n.Stage("datastore"), "the external etcd client", func(ctx context.Context) error {
		<-ctx.Done()
		return cli.Close()
	})
	n.Waiting("the external etcd at " + strings.Join(cc.Endpoints, ","))
	if err := etcd.WaitReachable(ctx, cli, cc, func(msg string) { n.Printf("%s", msg) }); err != nil {
		return nil, err
	}
	n.Waiting("the cluster's bootstrap data in the external etcd")
	secret, err := tokenSecret(cfg)
	if err != nil {
		return nil, err
	}
	tlsDir := cfg.Paths().ServerTLSDir()
	mine := cfg.Cluster.Settings()
	stored, found, err := bootstrap.Load(ctx, cli, secret)
	if err != nil {
		return nil, err
	}
	replace := false
	if !found {
		_, statErr := os.Stat(filepath.Join(tlsDir, "server-ca.crt"))
		replace = errors.Is(statErr, os.ErrNotExist)
		if err := pki.EnsureSharedFiles(tlsDir); err != nil {
			return nil, err
		}
		b, err := bootstrap.Read(tlsDir, false, mine)
		if err != nil {
			return nil, err
		}
		if stored, err = bootstrap.StoreFirst(ctx, cli, secret, b); err != nil {
			return nil, err
		}
		if stored == b {
			n.Printf("stored the cluster's CAs in the external etcd, encrypted with the token: more servers join with the same --datastore-endpoint and token")
		}
	}
	if err := stored.Settings.Agree(mine); err != nil {
		return nil, err
	}
	if err := stored.Write(tlsDir, replace); err != nil {
		return nil, err
	}
	return &store{kind: config.External, api: cc, cli: cli}, nil
}

// tokenSecret is the secret part of the cluster token: given, or in the token file of an
// earlier start.
func tokenSecret(cfg *config.Server) (string, error) {
	raw := cfg.Token
	if raw == "" {
		var err error
		if raw, err = token.ReadFile(cfg.Paths().TokenFile()); err != nil {
			return "", fmt.Errorf("the cluster's token: %w", err)
		}
	}
	t, err := token.ParseServer(raw)
	if err != nil {
		return "", fmt.Errorf("--token: %w", err)
	}
	return t.Password, nil
}

// startEmbedded starts this server's etcd member: a new cluster (--cluster-init, moving the
// bbolt datastore's data into it if there is one), a join (--server), a restart on existing
// data, or a reset of the cluster to this one member (--cluster-reset).
func startEmbedded(ctx context.Context, n *lifecycle.Node, cfg *config.Server) (*store, error) {
	paths := cfg.Paths()
	joinedFrom, _ := os.ReadFile(paths.EtcdJoinedFile())
	hasMember := paths.HasEtcdMember()
	_, bboltErr := os.Stat(paths.BboltFile())
	hasBbolt := bboltErr == nil
	switch {
	case cfg.ClusterInit && len(joinedFrom) > 0:
		return nil, fmt.Errorf("--cluster-init starts a new cluster, but this server already belongs to one: it joined %s; start it without --cluster-init (it rejoins by itself), or with --cluster-reset if the cluster lost its quorum",
			strings.TrimSpace(string(joinedFrom)))
	case cfg.ClusterReset && !hasMember:
		return nil, fmt.Errorf("--cluster-reset resets this server's embedded etcd, but %s holds none", paths.EtcdDir())
	case cfg.JoinURL != "" && hasBbolt && !hasMember:
		return nil, fmt.Errorf("this server has a bbolt datastore (%s) with its own cluster's data; joining another cluster would lose it. Move %s away to join afresh, or start it with --cluster-init to keep it and let others join it", paths.BboltFile(), filepath.Dir(paths.DatastoreDir()))
	case cfg.JoinURL != "" && !hasMember:
		return joinEmbedded(ctx, n, cfg)
	}

	tls, err := pki.EnsureEtcd(paths.ServerTLSDir(), cfg.NodeName, cfg.NodeIPs)
	if err != nil {
		return nil, fmt.Errorf("etcd certificates: %w", err)
	}
	// A bbolt file next to etcd data is a move that did not finish: the copy starts over.
	migrate := hasBbolt
	if migrate && hasMember {
		n.Printf("an earlier move of the bbolt datastore into etcd did not finish; starting it over")
		if err := os.RemoveAll(paths.EtcdDir()); err != nil {
			return nil, err
		}
	}
	if cfg.ClusterReset {
		n.Printf("--cluster-reset: making this server's etcd member the only member of its cluster, with all its data")
	}
	n.Waiting("the embedded etcd member")
	member, err := etcd.StartMember(ctx, etcd.MemberConfig{
		DataDir: paths.EtcdDir(), Name: cfg.NodeName, IP: cfg.NodeIPs[0], TLS: tls,
		ForceNewCluster: cfg.ClusterReset, Debug: cfg.Debug,
	})
	if err != nil {
		return nil, err
	}
	s, err := newEmbeddedStore(n, member, tls)
	if err != nil {
		return nil, err
	}
	if migrate {
		n.Waiting("the bbolt datastore's data to move into etcd")
		keys, err := etcd.MoveFromBbolt(ctx, paths.DatastoreDir(), paths.RunDir, paths.BboltMigratedFile(), s.cli)
		if err != nil {
			return nil, fmt.Errorf("moving the bbolt datastore into etcd (the bbolt file is untouched; the next start tries again): %w", err)
		}
		n.Printf("moved %d keys from the bbolt datastore into embedded etcd; the bbolt file is kept at %s", keys, paths.BboltMigratedFile())
	}
	if cfg.ClusterReset {
		n.Printf("etcd was reset to this one member. Remove --cluster-reset from this server's flags now (a later start with it would drop the servers that rejoin). On each other server: stop it, move its %s away, and start it with --server https://%s:%d to join again",
			paths.EtcdDir(), cfg.NodeIPs[0], cfg.HTTPSPort)
	}
	return s, nil
}

// newEmbeddedStore runs the started member on the node and connects ketch's own client to it.
func newEmbeddedStore(n *lifecycle.Node, member *etcd.Member, tls *pki.Etcd) (*store, error) {
	api := etcd.ClientConfig{Endpoints: []string{etcd.LocalClientURL}, CAFile: tls.ServerCA, CertFile: tls.ClientCert, KeyFile: tls.ClientKey}
	cli, err := etcd.NewClient(api)
	if err != nil {
		member.Close()
		return nil, err
	}
	n.Go(n.Stage("datastore"), "embedded etcd", func(ctx context.Context) error {
		err := member.Run(ctx)
		cli.Close()
		return err
	})
	return &store{kind: config.Embedded, api: api, cli: cli, tls: tls}, nil
}

// joinEmbedded joins the embedded etcd cluster of the server at cfg.JoinURL: it checks that
// server's CA against the token, takes the cluster's bootstrap data, adds itself as a learner,
// starts its member and waits to be promoted. A join that fails leaves no member behind in the
// cluster and no etcd data here.
func joinEmbedded(ctx context.Context, n *lifecycle.Node, cfg *config.Server) (*store, error) {
	paths := cfg.Paths()
	tok, err := token.ParseServer(cfg.Token)
	if err != nil {
		return nil, fmt.Errorf("--token: %w", err)
	}
	n.Waiting("the first server at " + cfg.JoinURL)
	var join *supervisor.ServerJoin
	err = supervisor.Retry(ctx, n.Printf, cfg.JoinURL, func() error {
		sup, err := supervisor.Connect(ctx, cfg.JoinURL, tok)
		if err != nil {
			return err
		}
		join, err = sup.ServerJoin(ctx)
		return err
	})
	if refused := (*supervisor.RefusedError)(nil); errors.As(err, &refused) && refused.Status == http.StatusUnauthorized {
		return nil, fmt.Errorf("the server at %s refused the token: a server joins with the first server's server token (its <data-dir>/server/token), given with --token or --token-file", cfg.JoinURL)
	}
	if err != nil {
		return nil, err
	}
	if !join.Bootstrap.HasEtcd() {
		return nil, fmt.Errorf("the server at %s does not run embedded etcd, so it cannot be joined", cfg.JoinURL)
	}
	if err := join.Bootstrap.Settings.Agree(cfg.Cluster.Settings()); err != nil {
		return nil, err
	}
	if err := join.Bootstrap.Write(paths.ServerTLSDir(), false); err != nil {
		return nil, err
	}
	tls, err := pki.EnsureEtcd(paths.ServerTLSDir(), cfg.NodeName, cfg.NodeIPs)
	if err != nil {
		return nil, fmt.Errorf("etcd certificates: %w", err)
	}
	remote, err := etcd.NewClient(etcd.ClientConfig{Endpoints: join.EtcdClientURLs, CAFile: tls.ServerCA, CertFile: tls.ClientCert, KeyFile: tls.ClientKey})
	if err != nil {
		return nil, err
	}
	defer remote.Close()

	n.Waiting("etcd to add this server as a member")
	id, initial, err := etcd.AddLearner(ctx, remote, cfg.NodeName, etcd.PeerURL(cfg.NodeIPs[0]))
	if err != nil {
		return nil, err
	}
	// A stop while the member catches up removes it from the cluster first, before anything
	// that may outlast the node's patience with a stopping step (closing a member can take
	// seconds): a stopped join must leave no member behind.
	cleanup := func() error {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		return etcd.Remove(cctx, remote, id)
	}
	startCtx, cancelStart := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelStart()
	removed := make(chan error, 1)
	stopWatch := context.AfterFunc(ctx, func() { removed <- cleanup(); cancelStart() })
	undo := func(cause error) error {
		var rmErr error
		if stopWatch() {
			rmErr = cleanup()
		} else {
			rmErr = <-removed
		}
		return errors.Join(cause, rmErr, os.RemoveAll(paths.EtcdDir()))
	}
	n.Waiting("the embedded etcd member to catch up with the cluster")
	member, err := etcd.StartMember(startCtx, etcd.MemberConfig{
		DataDir: paths.EtcdDir(), Name: cfg.NodeName, IP: cfg.NodeIPs[0], TLS: tls, InitialCluster: initial, Debug: cfg.Debug,
	})
	if err != nil {
		return nil, undo(err)
	}
	n.Waiting("etcd to promote this server's member")
	if err := etcd.Promote(startCtx, remote, id); err != nil {
		member.Close()
		return nil, undo(err)
	}
	if !stopWatch() {
		member.Close()
		return nil, undo(context.Cause(ctx))
	}
	if err := os.WriteFile(paths.EtcdJoinedFile(), []byte(cfg.JoinURL+"\n"), 0o600); err != nil {
		member.Close()
		return nil, errors.Join(err, cleanup(), os.RemoveAll(paths.EtcdDir()))
	}
	n.Printf("joined the cluster's etcd through %s as member %x", cfg.JoinURL, id)
	return newEmbeddedStore(n, member, tls)
}

// serverJoin is what this server hands a joining one: the shared files, with etcd's, and its
// members' client URLs.
func (s *store) serverJoin(cfg *config.Server) func(context.Context) (*supervisor.ServerJoin, error) {
	if s.kind != config.Embedded {
		return nil
	}
	return func(ctx context.Context) (*supervisor.ServerJoin, error) {
		b, err := bootstrap.Read(cfg.Paths().ServerTLSDir(), true, cfg.Cluster.Settings())
		if err != nil {
			return nil, err
		}
		list, err := s.cli.MemberList(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the etcd members: %w", err)
		}
		var urls []string
		for _, m := range list.Members {
			urls = append(urls, m.ClientURLs...)
		}
		return &supervisor.ServerJoin{Bootstrap: b, EtcdClientURLs: urls}, nil
	}
}

// warnIfEven says so on the console when the cluster has an even number of voting members.
func (s *store) warnIfEven(ctx context.Context, n *lifecycle.Node) {
	if s.kind != config.Embedded {
		return
	}
	// Right after a join the local member may not have applied its own promotion yet: until it
	// has, it refuses linearizable reads as a learner, or lists itself as one. Ask again for a
	// while rather than stay silent about an even count.
	var voters int
	last := errors.New("no answer yet")
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, evenCheckTimeout, true, func(ctx context.Context) (bool, error) {
		list, err := s.cli.MemberList(ctx)
		switch {
		case err != nil:
			last = err
		case etcd.IsLearner(list.Members, list.Header.MemberId):
			last = errors.New("this member still lists itself as a learner")
		default:
			voters = etcd.Voters(list.Members)
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		klog.InfoS("Could not count etcd's voting members", "err", last)
		return
	}
	if w := etcd.EvenWarning(voters); w != "" {
		n.Printf("warning: %s", w)
	}
}

// evenCheckTimeout bounds warnIfEven's wait for the local member to see itself promoted.
const evenCheckTimeout = 5 * time.Second
