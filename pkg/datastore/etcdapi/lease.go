package etcdapi

import (
	"context"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/ketch-k8s/ketch/pkg/datastore/mvcc"
)

type leaseServer struct {
	pb.UnimplementedLeaseServer
	store *mvcc.Store
	hdr   header
}

func (s *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	resp, err := s.store.LeaseGrant(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

func (s *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	resp, err := s.store.LeaseRevoke(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

// LeaseTimeToLive answers TTL -1 for an unknown lease, as etcd does, instead of an error.
func (s *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	resp, err := s.store.LeaseTimeToLive(r)
	if errors.Is(err, mvcc.ErrLeaseNotFound) {
		resp, err = &pb.LeaseTimeToLiveResponse{ID: r.ID, TTL: -1}, nil
	}
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp.Header = s.hdr.fill(resp.Header)
	return resp, nil
}

func (s *leaseServer) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	resp := s.store.LeaseLeases()
	s.hdr.fill(resp.Header)
	return resp, nil
}

// LeaseKeepAlive renews leases as the client asks; an unknown or expired lease gets TTL 0,
// which clients take as "gone".
func (s *leaseServer) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		ttl, err := s.store.LeaseRenew(ctx, req.ID)
		if errors.Is(err, mvcc.ErrLeaseNotFound) {
			ttl, err = 0, nil
		}
		if err != nil {
			return toGRPCError(err)
		}
		if err := stream.Send(&pb.LeaseKeepAliveResponse{Header: s.hdr.now(), ID: req.ID, TTL: ttl}); err != nil {
			return err
		}
	}
}
