package etcdapi

import (
	"context"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/ketch-k8s/ketch/pkg/datastore/mvcc"
)

type watchServer struct {
	pb.UnimplementedWatchServer
	store *mvcc.Store
	hdr   header
	cfg   Config
}

// Watch serves one client stream: a goroutine reads its requests while this one sends
// everything the stream's watchers produce.
func (s *watchServer) Watch(stream pb.Watch_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	send := func(r *mvcc.WatchResponse) error {
		wr := &pb.WatchResponse{
			Header: s.hdr.fill(&pb.ResponseHeader{Revision: r.Revision}), WatchId: r.WatchID,
			Created: r.Created, Canceled: r.Canceled, CancelReason: r.CancelReason,
			CompactRevision: r.CompactRevision, Events: r.Events,
		}
		if r.CompactRevision != 0 {
			// etcd tells a watcher that compaction canceled with a header at revision 0.
			wr.Header.Revision = 0
		}
		if r.Fragment {
			return sendFragments(wr, s.cfg.MaxRequestBytes, stream.Send)
		}
		return stream.Send(wr)
	}
	ws := s.store.NewWatchStream(send, s.cfg.WatchProgressNotifyInterval)
	recvErr := make(chan error, 1)
	go func() {
		err := recvWatchRequests(ctx, stream, ws)
		if err != nil {
			recvErr <- err
			cancel()
		}
	}()
	err := ws.Run(ctx)
	select {
	case rerr := <-recvErr:
		err = rerr
	default:
	}
	if err == nil {
		err = stream.Context().Err()
	}
	if errors.Is(err, context.Canceled) {
		return rpctypes.ErrGRPCWatchCanceled
	}
	return err
}

// recvWatchRequests reads the client's requests until it closes its side or the stream ends.
func recvWatchRequests(ctx context.Context, stream pb.Watch_WatchServer, ws *mvcc.WatchStream) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			// The client sends no more requests but still wants events.
			return nil
		}
		if err != nil {
			return err
		}
		switch uv := req.RequestUnion.(type) {
		case *pb.WatchRequest_CreateRequest:
			if uv.CreateRequest != nil {
				err = ws.Watch(ctx, watchRequest(uv.CreateRequest))
			}
		case *pb.WatchRequest_CancelRequest:
			if uv.CancelRequest != nil {
				err = ws.Cancel(ctx, uv.CancelRequest.WatchId)
			}
		case *pb.WatchRequest_ProgressRequest:
			if uv.ProgressRequest != nil {
				err = ws.RequestProgress(ctx)
			}
		}
		if err != nil {
			return err
		}
	}
}

// watchRequest normalises a create request as etcd does: an empty key means "\x00", and a
// range end of "\x00" means no upper bound.
func watchRequest(c *pb.WatchCreateRequest) mvcc.WatchRequest {
	r := mvcc.WatchRequest{
		ID: c.WatchId, Key: c.Key, End: c.RangeEnd, StartRev: c.StartRevision,
		PrevKV: c.PrevKv, ProgressNotify: c.ProgressNotify, Fragment: c.Fragment,
	}
	if len(r.Key) == 0 {
		r.Key = []byte{0}
	}
	switch {
	case len(r.End) == 0:
		r.End = nil
	case len(r.End) == 1 && r.End[0] == 0:
		r.End = []byte{}
	}
	for _, f := range c.Filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			r.NoPut = true
		case pb.WatchCreateRequest_NODELETE:
			r.NoDelete = true
		}
	}
	return r
}

// sendFragments splits a response whose events exceed limit into several, all but the last
// marked Fragment, for watchers that asked for it. One event is never split.
func sendFragments(wr *pb.WatchResponse, limit int, send func(*pb.WatchResponse) error) error {
	if wr.Size() < limit || len(wr.Events) < 2 {
		return send(wr)
	}
	events := wr.Events
	for len(events) > 0 {
		part := *wr
		part.Events = nil
		n := 0
		for n < len(events) {
			part.Events = events[:n+1]
			if n > 0 && part.Size() >= limit {
				break
			}
			n++
		}
		part.Events = events[:n]
		events = events[n:]
		part.Fragment = len(events) > 0
		if err := send(&part); err != nil {
			return err
		}
	}
	return nil
}
