package etcdapi

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/ketch-k8s/ketch/pkg/datastore/mvcc"
)

func openStore(t testing.TB) *mvcc.Store {
	t.Helper()
	s, err := mvcc.Open(mvcc.Options{Path: filepath.Join(t.TempDir(), "test.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// serve starts the gRPC services on a loopback port and returns a connection to them.
func serve(t *testing.T, store *mvcc.Store) *grpc.ClientConn {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := New(store, Config{})
	go gs.Serve(l)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func putOp(key, value string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(key), Value: []byte(value)}}}
}

func TestBadRequests(t *testing.T) {
	store := openStore(t)
	conn := serve(t, store)
	kv := pb.NewKVClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("keep"), Value: []byte("me")}); err != nil {
		t.Fatal(err)
	}
	garbage := rawBytes("\xff\xff\xff\xff garbage")
	tooMany := &pb.TxnRequest{}
	for i := 0; i < DefaultMaxTxnOps+1; i++ {
		tooMany.Success = append(tooMany.Success, putOp(strings.Repeat("k", i+1), "v"))
	}
	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"value over max-request-bytes", func() error {
			_, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("big"), Value: make([]byte, DefaultMaxRequestBytes+1)})
			return err
		}, rpctypes.ErrGRPCRequestTooLarge},
		{"message over the gRPC limit", func() error {
			_, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("huge"), Value: make([]byte, 4<<20)})
			return err
		}, status.Error(codes.ResourceExhausted, "")},
		{"empty key", func() error { _, err := kv.Range(ctx, &pb.RangeRequest{}); return err }, rpctypes.ErrGRPCEmptyKey},
		{"bad sort order", func() error {
			_, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("a"), SortOrder: 42})
			return err
		}, rpctypes.ErrGRPCInvalidSortOption},
		{"too many txn ops", func() error { _, err := kv.Txn(ctx, tooMany); return err }, rpctypes.ErrGRPCTooManyOps},
		{"duplicate key in txn", func() error {
			_, err := kv.Txn(ctx, &pb.TxnRequest{Success: []*pb.RequestOp{putOp("a", "1"), putOp("a", "2")}})
			return err
		}, rpctypes.ErrGRPCDuplicateKey},
		{"put and delete of one key in txn", func() error {
			_, err := kv.Txn(ctx, &pb.TxnRequest{Success: []*pb.RequestOp{putOp("a", "1"), {Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("b")}}}}})
			return err
		}, rpctypes.ErrGRPCDuplicateKey},
		{"empty txn op", func() error {
			_, err := kv.Txn(ctx, &pb.TxnRequest{Success: []*pb.RequestOp{{}}})
			return err
		}, rpctypes.ErrGRPCKeyNotFound},
		{"txn op without its request", func() error {
			// On the wire this is an empty operation, which etcd answers as "key not found".
			_, err := kv.Txn(ctx, &pb.TxnRequest{Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{}}}})
			return err
		}, rpctypes.ErrGRPCKeyNotFound},
		{"compare without a key", func() error {
			_, err := kv.Txn(ctx, &pb.TxnRequest{Compare: []*pb.Compare{{}}})
			return err
		}, rpctypes.ErrGRPCEmptyKey},
		{"malformed protobuf", func() error {
			return conn.Invoke(ctx, "/etcdserverpb.KV/Put", &garbage, new(rawBytes), grpc.ForceCodecV2(rawCodec{}))
		}, status.Error(codes.Internal, "")},
	}
	for _, c := range cases {
		err := c.call()
		got, want := status.Convert(err), status.Convert(c.want)
		if err == nil || got.Code() != want.Code() || (want.Message() != "" && got.Message() != want.Message()) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if store.Rev() != 2 {
		t.Fatalf("bad requests changed the revision to %d", store.Rev())
	}
	resp, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("keep")})
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "me" {
		t.Fatalf("stored data after bad requests: %v %v", resp, err)
	}
}

// rawBytes and rawCodec send bytes as they are, under the proto content type, to deliver a
// malformed message.
type rawBytes []byte

type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*rawBytes))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*rawBytes) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }
