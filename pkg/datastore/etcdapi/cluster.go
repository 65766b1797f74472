package etcdapi

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ketch-k8s/ketch/pkg/datastore/mvcc"
)

type clusterServer struct {
	pb.UnimplementedClusterServer
	store *mvcc.Store
	hdr   header
	cfg   Config
}

var errSingleMember = status.Error(codes.FailedPrecondition, "etcdserver: the ketch datastore has exactly one member; membership cannot change")

func (s *clusterServer) member() *pb.Member {
	return &pb.Member{ID: s.store.MemberID(), Name: s.cfg.Name, ClientURLs: s.cfg.ClientURLs}
}

func (s *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	return &pb.MemberListResponse{Header: s.hdr.now(), Members: []*pb.Member{s.member()}}, nil
}

func (s *clusterServer) MemberAdd(context.Context, *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	return nil, errSingleMember
}

func (s *clusterServer) MemberRemove(context.Context, *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	return nil, errSingleMember
}

func (s *clusterServer) MemberUpdate(context.Context, *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	return nil, errSingleMember
}

func (s *clusterServer) MemberPromote(context.Context, *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	return nil, errSingleMember
}
