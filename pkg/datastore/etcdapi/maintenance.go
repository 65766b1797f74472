package etcdapi

import (
	"context"
	"crypto/sha256"
	"hash"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/version"

	"github.com/ketch-k8s/ketch/pkg/datastore/mvcc"
)

// storageVersion is the etcd storage version reported: the data model this store implements.
const storageVersion = "3.6.0"

// snapshotChunk is the size of the blobs a snapshot is streamed in, as in etcd.
const snapshotChunk = 32 * 1024

type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	store *mvcc.Store
	hdr   header
}

// Status reports etcd's API version (kube-apiserver enables watch progress requests from 3.6
// on), the file's size, and this member as the permanent leader.
func (s *maintenanceServer) Status(ctx context.Context, r *pb.StatusRequest) (*pb.StatusResponse, error) {
	size, inUse := s.store.DBSize()
	rev := s.store.Rev()
	return &pb.StatusResponse{
		Header:           s.hdr.now(),
		Version:          version.Version,
		DbSize:           size,
		DbSizeInUse:      inUse,
		Leader:           s.store.MemberID(),
		RaftIndex:        uint64(rev),
		RaftAppliedIndex: uint64(rev),
		RaftTerm:         raftTerm,
		StorageVersion:   storageVersion,
		DowngradeInfo:    &pb.DowngradeInfo{},
	}, nil
}

func (s *maintenanceServer) Defragment(ctx context.Context, r *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	if err := s.store.Defragment(); err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.DefragmentResponse{Header: s.hdr.now()}, nil
}

// Alarm reports no alarms: this store raises none.
func (s *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	return &pb.AlarmResponse{Header: s.hdr.now()}, nil
}

// Snapshot streams a consistent copy of the file followed, as etcd does, by its SHA-256.
func (s *maintenanceServer) Snapshot(r *pb.SnapshotRequest, stream pb.Maintenance_SnapshotServer) error {
	w := &snapshotWriter{stream: stream, sum: sha256.New(), buf: make([]byte, 0, snapshotChunk)}
	err := s.store.Snapshot(w, func(size int64) { w.remaining = size })
	if err == nil {
		err = w.flush()
	}
	if err == nil {
		err = stream.Send(&pb.SnapshotResponse{Header: s.hdr.now(), Blob: w.sum.Sum(nil), Version: storageVersion})
	}
	return toGRPCError(err)
}

type snapshotWriter struct {
	stream    pb.Maintenance_SnapshotServer
	sum       hash.Hash
	buf       []byte
	remaining int64
}

func (w *snapshotWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), snapshotChunk-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if len(w.buf) == snapshotChunk {
			if err := w.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (w *snapshotWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	w.sum.Write(w.buf)
	w.remaining -= int64(len(w.buf))
	blob := append([]byte(nil), w.buf...)
	w.buf = w.buf[:0]
	return w.stream.Send(&pb.SnapshotResponse{RemainingBytes: uint64(max(w.remaining, 0)), Blob: blob, Version: storageVersion})
}
