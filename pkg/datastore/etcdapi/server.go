// Package etcdapi serves an mvcc.Store over etcd's v3 gRPC API (KV, Watch, Lease, Maintenance,
// Cluster), so that etcd clients, etcdctl and kube-apiserver use it unchanged.
package etcdapi

import (
	"math"
	"runtime"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/ketch-k8s/ketch/pkg/datastore/mvcc"
)

// Config shapes the API the way etcd's flags do.
type Config struct {
	// Name is the single member's name, as MemberList reports it.
	Name string
	// ClientURLs are the URLs the member serves on, as MemberList reports them.
	ClientURLs []string
	// MaxRequestBytes limits a write request's size, like etcd's --max-request-bytes.
	MaxRequestBytes int
	// MaxTxnOps limits the operations in one transaction branch, like etcd's --max-txn-ops.
	MaxTxnOps int
	// WatchProgressNotifyInterval paces progress notifications for watchers that ask for them.
	WatchProgressNotifyInterval time.Duration
}

// Defaults as in etcd.
const (
	DefaultMaxRequestBytes             = 1536 * 1024
	DefaultMaxTxnOps                   = 128
	DefaultWatchProgressNotifyInterval = 10 * time.Minute
	// grpcOverheadBytes is etcd's allowance for the gRPC envelope on top of a request.
	grpcOverheadBytes = 512 * 1024
	// minWatchProgressInterval is the floor etcd applies to the progress notify interval.
	minWatchProgressInterval = 100 * time.Millisecond
	// raftTerm stands in for etcd's raft term in headers: there is no election, so it never
	// changes.
	raftTerm = 2
)

func (c *Config) setDefaults() {
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxTxnOps <= 0 {
		c.MaxTxnOps = DefaultMaxTxnOps
	}
	if c.WatchProgressNotifyInterval <= 0 {
		c.WatchProgressNotifyInterval = DefaultWatchProgressNotifyInterval
	}
	c.WatchProgressNotifyInterval = max(c.WatchProgressNotifyInterval, minWatchProgressInterval)
	if c.Name == "" {
		c.Name = "default"
	}
}

// New returns a gRPC server with etcd's services registered on store.
func New(store *mvcc.Store, cfg Config) *grpc.Server {
	cfg.setDefaults()
	gs := grpc.NewServer(
		grpc.MaxRecvMsgSize(cfg.MaxRequestBytes+grpcOverheadBytes),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(math.MaxUint32),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: false}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Hour, Timeout: 20 * time.Second}),
		// Reused workers keep their grown stacks; a fresh goroutine per request spends a tenth
		// of the CPU growing its stack for the generated (un)marshalling code.
		grpc.NumStreamWorkers(uint32(4*runtime.GOMAXPROCS(0))),
		grpc.ChainUnaryInterceptor(recoverUnary),
		grpc.ChainStreamInterceptor(recoverStream),
	)
	h := header{store: store}
	pb.RegisterKVServer(gs, &kvServer{store: store, hdr: h, cfg: cfg})
	pb.RegisterWatchServer(gs, &watchServer{store: store, hdr: h, cfg: cfg})
	pb.RegisterLeaseServer(gs, &leaseServer{store: store, hdr: h})
	pb.RegisterMaintenanceServer(gs, &maintenanceServer{store: store, hdr: h})
	pb.RegisterClusterServer(gs, &clusterServer{store: store, hdr: h, cfg: cfg})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	return gs
}

// header fills response headers the way etcd does.
type header struct{ store *mvcc.Store }

func (h header) fill(hdr *pb.ResponseHeader) *pb.ResponseHeader {
	if hdr == nil {
		hdr = &pb.ResponseHeader{}
	}
	hdr.ClusterId = h.store.ClusterID()
	hdr.MemberId = h.store.MemberID()
	hdr.RaftTerm = raftTerm
	if hdr.Revision == 0 {
		hdr.Revision = h.store.Rev()
	}
	return hdr
}

func (h header) now() *pb.ResponseHeader { return h.fill(nil) }
