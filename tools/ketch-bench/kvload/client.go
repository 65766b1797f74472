package kvload

import (
	"crypto/rand"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"go.uber.org/zap"
)

// ClientsPerConn is how many concurrent bench clients share one gRPC connection. etcd's own
// benchmark tool is usually run with one connection per ~16 clients (--conns/--clients), and a
// kube-apiserver multiplexes all its requests over very few connections, so one connection per
// client would measure connection handling rather than the datastore.
const ClientsPerConn = 16

// NewClient opens one gRPC connection to endpoint. Every request of the workload goes through
// clients made here so both targets see identical client settings. The kubernetes wrapper is
// used so that List and OptimisticPut are the exact calls kube-apiserver makes.
func NewClient(endpoint string) (*kubernetes.Client, error) {
	c, err := kubernetes.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	return c, nil
}

// pool is a set of connections shared round-robin by a number of logical clients.
type pool struct {
	conns []*kubernetes.Client
}

func newPool(endpoint string, clients int) (*pool, error) {
	p := &pool{}
	for range (clients + ClientsPerConn - 1) / ClientsPerConn {
		c, err := NewClient(endpoint)
		if err != nil {
			p.close()
			return nil, err
		}
		p.conns = append(p.conns, c)
	}
	return p, nil
}

// get returns the connection of logical client i.
func (p *pool) get(i int) *kubernetes.Client { return p.conns[i%len(p.conns)] }

func (p *pool) close() {
	for _, c := range p.conns {
		_ = c.Close()
	}
}

// Payload hands out value bytes. Values are random so that a datastore that compresses or
// deduplicates gets no advantage a real cluster's objects would not give it.
type Payload struct {
	buf []byte
}

func NewPayload() *Payload {
	b := make([]byte, 1<<20)
	_, _ = rand.Read(b)
	return &Payload{buf: b}
}

// value returns a size-byte value that differs for neighbouring i. Callers must not modify it.
func (p *Payload) value(size, i int) []byte {
	span := len(p.buf) - size
	off := (i * 4099) % span
	return p.buf[off : off+size]
}
