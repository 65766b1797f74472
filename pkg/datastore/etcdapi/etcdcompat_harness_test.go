package etcdapi_test

// The harness of the differential test in etcdcompat_test.go: a real etcd and a ketch datastore
// side by side, every request sent to both, every answer normalised and compared.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc/status"

	"github.com/ketch-k8s/ketch/pkg/datastore"
)

const (
	callTimeout = 10 * time.Second
	// maxDivergences stops the test once this many differences were reported: after the first
	// few the two states usually differ and every later comparison only repeats the news.
	maxDivergences = 15
	// autoLeaseBase numbers the leases whose IDs the servers chose, so that requests and
	// normalised responses can name them the same way on both sides.
	autoLeaseBase = 7_000_000_000_000
	// ttlSlack is how far below its granted TTL a lease's remaining TTL may be: more than the
	// whole test takes.
	ttlSlack = 120
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startEtcd runs a single-member etcd in-process and returns its client URL.
func startEtcd(t *testing.T) string {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	cfg.UnsafeNoFsync = true
	cu := url.URL{Scheme: "http", Host: freeAddr(t)}
	pu := url.URL{Scheme: "http", Host: freeAddr(t)}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	logger := zap.NewNop()
	if os.Getenv("KETCH_ETCDCOMPAT_ETCD_LOG") != "" {
		// etcd reports its own panics and fatal errors only in its log.
		logger = zap.Must(zap.NewDevelopment(zap.IncreaseLevel(zap.ErrorLevel), zap.AddStacktrace(zap.DPanicLevel)))
	}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(logger)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("starting etcd: %v", err)
	}
	// Registered after TempDir, so it runs before the directory is removed.
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatalf("etcd failed: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("etcd not ready after 30s")
	}
	return cu.String()
}

// startKetch runs ketch's datastore in-process and returns its client URL.
func startKetch(t *testing.T) string {
	t.Helper()
	u := "http://" + freeAddr(t)
	d, err := datastore.Start(datastore.Config{DataDir: t.TempDir(), ListenClientURLs: []string{u}})
	if err != nil {
		t.Fatalf("starting the ketch datastore: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("stopping the ketch datastore: %v", err)
		}
	})
	return u
}

// side is one of the two servers, with the raw gRPC stubs of a clientv3 connection to it (raw,
// so that requests and answers are exactly what is on the wire).
type side struct {
	name  string
	kv    pb.KVClient
	lease pb.LeaseClient
	watch pb.WatchClient
	// toReal and toLogical map the test's names for auto-assigned leases to this server's IDs.
	toReal, toLogical map[int64]int64
}

func newSide(t *testing.T, name, endpoint string) *side {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("connecting to %s: %v", name, err)
	}
	// Registered after the server, so the connection closes (ending watch streams) before the
	// server stops.
	t.Cleanup(func() { cli.Close() })
	conn := cli.ActiveConnection()
	return &side{
		name: name, kv: pb.NewKVClient(conn), lease: pb.NewLeaseClient(conn), watch: pb.NewWatchClient(conn),
		toReal: make(map[int64]int64), toLogical: make(map[int64]int64),
	}
}

func (s *side) real(id int64) int64 {
	if r, ok := s.toReal[id]; ok {
		return r
	}
	return id
}

func (s *side) logical(id int64) int64 {
	if l, ok := s.toLogical[id]; ok {
		return l
	}
	return id
}

func (s *side) bind(logical, real int64) {
	s.toReal[logical] = real
	s.toLogical[real] = logical
}

// pair runs every operation on both servers and compares the answers.
type pair struct {
	t           *testing.T
	e, k        *side
	phase       string
	rev         int64 // current revision, as etcd reports it
	compactRev  int64
	nextAuto    int64
	divergences int
	watches     []*watchPair
}

func newPair(t *testing.T) *pair {
	e := newSide(t, "etcd", startEtcd(t))
	k := newSide(t, "ketch", startKetch(t))
	return &pair{t: t, e: e, k: k, rev: 1}
}

func (p *pair) failf(format string, args ...any) {
	p.t.Helper()
	p.divergences++
	p.t.Errorf("[%s] "+format, append([]any{p.phase}, args...)...)
	if p.divergences >= maxDivergences {
		p.t.Fatalf("stopping after %d divergences", p.divergences)
	}
}

// respMsg is what every etcd response type is.
type respMsg interface {
	Marshal() ([]byte, error)
	String() string
	GetHeader() *pb.ResponseHeader
}

type wireMsg interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

func cloneMsg[T any, PT interface {
	*T
	wireMsg
}](m PT) PT {
	b, err := m.Marshal()
	if err != nil {
		panic(err)
	}
	c := PT(new(T))
	if err := c.Unmarshal(b); err != nil {
		panic(err)
	}
	return c
}

// forSide returns a copy of r with the test's lease names replaced by s's lease IDs.
func forSide[T any, PT interface {
	*T
	wireMsg
}](s *side, r PT) PT {
	c := cloneMsg(r)
	switch m := any(c).(type) {
	case *pb.PutRequest:
		m.Lease = s.real(m.Lease)
	case *pb.TxnRequest:
		mapTxnLeases(m, s.real)
	case *pb.LeaseRevokeRequest:
		m.ID = s.real(m.ID)
	case *pb.LeaseTimeToLiveRequest:
		m.ID = s.real(m.ID)
	}
	return c
}

func mapTxnLeases(r *pb.TxnRequest, f func(int64) int64) {
	if r == nil {
		return
	}
	for _, c := range r.Compare {
		if l, ok := c.GetTargetUnion().(*pb.Compare_Lease); ok {
			l.Lease = f(l.Lease)
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			switch v := op.GetRequest().(type) {
			case *pb.RequestOp_RequestPut:
				if v.RequestPut != nil {
					v.RequestPut.Lease = f(v.RequestPut.Lease)
				}
			case *pb.RequestOp_RequestTxn:
				mapTxnLeases(v.RequestTxn, f)
			}
		}
	}
}

// normHeader hides what must differ between two independent servers: their cluster and member
// IDs, and the raft term (etcd's is real, ketch's a constant). Zero stays zero, so that a header
// one server leaves unfilled and the other fills still shows.
func normHeader(h *pb.ResponseHeader) {
	if h == nil {
		return
	}
	if h.ClusterId != 0 {
		h.ClusterId = 1
	}
	if h.MemberId != 0 {
		h.MemberId = 1
	}
	if h.RaftTerm != 0 {
		h.RaftTerm = 1
	}
}

func normKV(s *side, kv *mvccpb.KeyValue) {
	if kv != nil {
		kv.Lease = s.logical(kv.Lease)
	}
}

func normEvent(s *side, ev *mvccpb.Event) {
	normKV(s, ev.Kv)
	normKV(s, ev.PrevKv)
}

// normalize rewrites m in place into what both servers must agree on: headers as normHeader
// says, auto-assigned lease IDs by their test name, and the few time-dependent fields.
func normalize(s *side, m any) {
	switch m := m.(type) {
	case *pb.RangeResponse:
		normHeader(m.Header)
		for _, kv := range m.Kvs {
			normKV(s, kv)
		}
	case *pb.PutResponse:
		normHeader(m.Header)
		normKV(s, m.PrevKv)
	case *pb.DeleteRangeResponse:
		normHeader(m.Header)
		for _, kv := range m.PrevKvs {
			normKV(s, kv)
		}
	case *pb.TxnResponse:
		normHeader(m.Header)
		for _, op := range m.Responses {
			switch r := op.Response.(type) {
			case *pb.ResponseOp_ResponseRange:
				normalize(s, r.ResponseRange)
			case *pb.ResponseOp_ResponsePut:
				normalize(s, r.ResponsePut)
			case *pb.ResponseOp_ResponseDeleteRange:
				normalize(s, r.ResponseDeleteRange)
			case *pb.ResponseOp_ResponseTxn:
				normalize(s, r.ResponseTxn)
			}
		}
	case *pb.CompactionResponse:
		normHeader(m.Header)
	case *pb.LeaseGrantResponse:
		normHeader(m.Header)
		m.ID = s.logical(m.ID)
	case *pb.LeaseRevokeResponse:
		normHeader(m.Header)
	case *pb.LeaseTimeToLiveResponse:
		normHeader(m.Header)
		m.ID = s.logical(m.ID)
		// The remaining TTL moves on between the two calls. etcd truncates the remaining
		// seconds, so a lease that was granted any time ago shows less than its granted TTL:
		// every such value counts as the same, anything else is kept to show.
		if m.GrantedTTL > 0 && m.TTL < m.GrantedTTL && m.TTL >= m.GrantedTTL-ttlSlack {
			m.TTL = m.GrantedTTL - 1
		}
		// etcd lists the keys in Go map order.
		sort.Slice(m.Keys, func(i, j int) bool { return bytes.Compare(m.Keys[i], m.Keys[j]) < 0 })
	case *pb.LeaseLeasesResponse:
		normHeader(m.Header)
		for _, l := range m.Leases {
			l.ID = s.logical(l.ID)
		}
	case *pb.WatchResponse:
		normHeader(m.Header)
		for _, ev := range m.Events {
			normEvent(s, ev)
		}
	default:
		panic(fmt.Sprintf("normalize: unexpected %T", m))
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	st := status.Convert(err)
	return fmt.Sprintf("code=%s message=%q", st.Code(), st.Message())
}

func run[T respMsg](call func(ctx context.Context, s *side) (T, error), e, k *side) (er, kr T, eErr, kErr error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	er, eErr = call(ctx, e)
	kr, kErr = call(ctx, k)
	return er, kr, eErr, kErr
}

// check compares the two answers to one request: the same gRPC status (code and message), or
// the same normalised response. It normalises e and k in place.
func check[T respMsg](p *pair, desc string, req any, e, k T, eErr, kErr error) {
	p.t.Helper()
	if es, ks := errString(eErr), errString(kErr); es != ks {
		p.failf("%s: errors differ\n  etcd:  %s\n  ketch: %s\n  request: %v", desc, es, ks, req)
		return
	}
	if eErr != nil {
		return
	}
	normalize(p.e, e)
	normalize(p.k, k)
	eb, err := e.Marshal()
	if err != nil {
		p.t.Fatalf("%s: marshalling etcd's answer: %v", desc, err)
	}
	kb, err := k.Marshal()
	if err != nil {
		p.t.Fatalf("%s: marshalling ketch's answer: %v", desc, err)
	}
	if !bytes.Equal(eb, kb) {
		p.failf("%s: responses differ\n  etcd:  %v\n  ketch: %v\n  request: %v", desc, e, k, req)
	}
	if h := e.GetHeader(); h != nil && h.Revision > p.rev {
		p.rev = h.Revision
	}
}

func do[T respMsg](p *pair, desc string, req any, call func(ctx context.Context, s *side) (T, error)) (T, error) {
	p.t.Helper()
	e, k, eErr, kErr := run(call, p.e, p.k)
	check(p, desc, req, e, k, eErr, kErr)
	return e, eErr
}

func (p *pair) Range(desc string, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	p.t.Helper()
	return do(p, desc, r, func(ctx context.Context, s *side) (*pb.RangeResponse, error) { return s.kv.Range(ctx, r) })
}

func (p *pair) Put(desc string, r *pb.PutRequest) (*pb.PutResponse, error) {
	p.t.Helper()
	return do(p, desc, r, func(ctx context.Context, s *side) (*pb.PutResponse, error) { return s.kv.Put(ctx, forSide(s, r)) })
}

func (p *pair) Delete(desc string, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	p.t.Helper()
	return do(p, desc, r, func(ctx context.Context, s *side) (*pb.DeleteRangeResponse, error) { return s.kv.DeleteRange(ctx, r) })
}

func (p *pair) Txn(desc string, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	p.t.Helper()
	return do(p, desc, r, func(ctx context.Context, s *side) (*pb.TxnResponse, error) { return s.kv.Txn(ctx, forSide(s, r)) })
}

// Compact first lets every watch stream catch up: etcd reads a watch event's prev_kv when it
// sends the event, so a compaction racing the send would make etcd's answer timing-dependent.
func (p *pair) Compact(desc string, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	p.t.Helper()
	p.syncWatches()
	resp, err := do(p, desc, r, func(ctx context.Context, s *side) (*pb.CompactionResponse, error) { return s.kv.Compact(ctx, r) })
	if err == nil && r.Revision > p.compactRev {
		p.compactRev = r.Revision
	}
	return resp, err
}

// LeaseGrant returns the lease's name in the test: its ID, or for an auto-assigned one a name
// bound to the ID each server chose.
func (p *pair) LeaseGrant(desc string, r *pb.LeaseGrantRequest) (int64, error) {
	p.t.Helper()
	e, k, eErr, kErr := run(func(ctx context.Context, s *side) (*pb.LeaseGrantResponse, error) {
		return s.lease.LeaseGrant(ctx, r)
	}, p.e, p.k)
	if r.ID == 0 && eErr == nil && kErr == nil {
		p.nextAuto++
		name := autoLeaseBase + p.nextAuto
		p.e.bind(name, e.ID)
		p.k.bind(name, k.ID)
	}
	check(p, desc, r, e, k, eErr, kErr)
	if eErr != nil {
		return 0, eErr
	}
	return e.ID, nil
}

func (p *pair) LeaseRevoke(desc string, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	p.t.Helper()
	return do(p, desc, r, func(ctx context.Context, s *side) (*pb.LeaseRevokeResponse, error) {
		return s.lease.LeaseRevoke(ctx, forSide(s, r))
	})
}

func (p *pair) LeaseTimeToLive(desc string, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	p.t.Helper()
	return do(p, desc, r, func(ctx context.Context, s *side) (*pb.LeaseTimeToLiveResponse, error) {
		return s.lease.LeaseTimeToLive(ctx, forSide(s, r))
	})
}

func (p *pair) LeaseLeases(desc string) (*pb.LeaseLeasesResponse, error) {
	p.t.Helper()
	r := &pb.LeaseLeasesRequest{}
	return do(p, desc, r, func(ctx context.Context, s *side) (*pb.LeaseLeasesResponse, error) {
		return s.lease.LeaseLeases(ctx, r)
	})
}

// syncWatches waits until every watch stream has been sent everything up to the current
// revision.
func (p *pair) syncWatches() {
	p.t.Helper()
	for _, wp := range p.watches {
		if p.rev >= wp.barrierFrom {
			wp.syncTo(p.rev)
		}
	}
}

// watchSide is one server's end of a watch stream: everything it sends is recorded.
type watchSide struct {
	name   string
	stream pb.Watch_WatchClient
	wake   chan struct{}

	mu      sync.Mutex
	msgs    []*pb.WatchResponse
	recvErr error
}

func (w *watchSide) recv() {
	for {
		r, err := w.stream.Recv()
		w.mu.Lock()
		if err != nil {
			w.recvErr = err
		} else {
			w.msgs = append(w.msgs, r)
		}
		w.mu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

func (w *watchSide) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.msgs)
}

func (w *watchSide) snapshot() []*pb.WatchResponse {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*pb.WatchResponse(nil), w.msgs...)
}

// waitFor returns the first message from index from on that matches, waiting up to timeout.
func (w *watchSide) waitFor(from int, timeout time.Duration, match func(*pb.WatchResponse) bool) (*pb.WatchResponse, error) {
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		for ; from < len(w.msgs); from++ {
			if match(w.msgs[from]) {
				m := w.msgs[from]
				w.mu.Unlock()
				return m, nil
			}
		}
		err := w.recvErr
		w.mu.Unlock()
		if err != nil {
			return nil, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nil
		}
		select {
		case <-w.wake:
		case <-time.After(left):
		}
	}
}

func (w *watchSide) send(r *pb.WatchRequest) error { return w.stream.Send(r) }

// live counts the watchers the stream has created and not yet canceled.
func (w *watchSide) live() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, m := range w.msgs {
		switch {
		case m.Created && !m.Canceled:
			n++
		case m.Canceled && !m.Created:
			n--
		}
	}
	return n
}

func isProgress(m *pb.WatchResponse) bool {
	return m.WatchId == -1 && !m.Created && !m.Canceled && len(m.Events) == 0
}

// watchPair is the same watch stream opened on both servers.
type watchPair struct {
	p    *pair
	name string
	e, k *watchSide
	// barrierFrom is the revision from which progress requests can be answered: etcd answers
	// none while a watcher waits for a start revision above the current one.
	barrierFrom int64
}

func (p *pair) newWatchPair(name string) *watchPair {
	p.t.Helper()
	open := func(s *side) *watchSide {
		ctx, cancel := context.WithCancel(context.Background())
		p.t.Cleanup(cancel)
		stream, err := s.watch.Watch(ctx)
		if err != nil {
			p.t.Fatalf("opening watch stream %s on %s: %v", name, s.name, err)
		}
		w := &watchSide{name: s.name, stream: stream, wake: make(chan struct{}, 1)}
		go w.recv()
		return w
	}
	wp := &watchPair{p: p, name: name, e: open(p.e), k: open(p.k)}
	p.watches = append(p.watches, wp)
	return wp
}

func (wp *watchPair) sendBoth(r *pb.WatchRequest) {
	wp.p.t.Helper()
	for _, w := range []*watchSide{wp.e, wp.k} {
		if err := w.send(r); err != nil {
			wp.p.t.Fatalf("watch stream %s on %s: sending: %v", wp.name, w.name, err)
		}
	}
}

// compareMsg compares two control messages of a watch stream (created, canceled, progress) in
// full, headers included.
func (wp *watchPair) compareMsg(desc string, e, k *pb.WatchResponse) {
	wp.p.t.Helper()
	switch {
	case e == nil && k == nil:
		return
	case e == nil || k == nil:
		wp.p.failf("watch %s: %s: etcd sent %v\n  ketch sent %v", wp.name, desc, e, k)
		return
	}
	e, k = cloneMsg(e), cloneMsg(k)
	normalize(wp.p.e, e)
	normalize(wp.p.k, k)
	eb, _ := e.Marshal()
	kb, _ := k.Marshal()
	if !bytes.Equal(eb, kb) {
		wp.p.failf("watch %s: %s: responses differ\n  etcd:  %v\n  ketch: %v", wp.name, desc, e, k)
	}
}

// watchAlone opens a watcher on a stream of its own: the way to watch from below the compacted
// revision. etcd keeps a watcher that compaction canceled in its stream's list (only a cancel
// request removes it), where it keeps every later progress request on the stream unanswered,
// and so would hold up syncWatches.
func (p *pair) watchAlone(desc string, r *pb.WatchCreateRequest) int64 {
	p.t.Helper()
	return p.newWatchPair(desc).create(desc, r)
}

// create opens a watcher on both and compares the created responses; it returns the ID etcd gave.
func (wp *watchPair) create(desc string, r *pb.WatchCreateRequest) int64 {
	wp.p.t.Helper()
	if r.StartRevision > 0 && r.StartRevision < wp.p.compactRev && wp.e.len() > 0 {
		wp.p.t.Fatalf("watch %s: %s: a watcher below the compacted revision needs a stream of its own (watchAlone)", wp.name, desc)
	}
	if r.StartRevision > wp.p.rev {
		wp.barrierFrom = max(wp.barrierFrom, r.StartRevision)
	}
	ce, ck := wp.e.len(), wp.k.len()
	wp.sendBoth(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: r}})
	created := func(m *pb.WatchResponse) bool { return m.Created }
	me, err := wp.e.waitFor(ce, callTimeout, created)
	if me == nil {
		wp.p.t.Fatalf("watch %s: %s: no created response from etcd (%v)", wp.name, desc, err)
	}
	mk, err := wp.k.waitFor(ck, callTimeout, created)
	if mk == nil {
		wp.p.failf("watch %s: %s: no created response from ketch (%v); etcd sent %v", wp.name, desc, err, me)
		return me.WatchId
	}
	wp.compareMsg(desc, me, mk)
	return me.WatchId
}

// cancel cancels a live watcher on both and compares the canceled responses. It first lets the
// stream catch up: etcd sends a watcher's history from a background loop every 100ms, so what a
// watcher from the past gets before it is canceled would be timing-dependent.
func (wp *watchPair) cancel(desc string, id int64) {
	wp.p.t.Helper()
	wp.syncTo(wp.p.rev)
	ce, ck := wp.e.len(), wp.k.len()
	wp.sendBoth(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: id}}})
	canceled := func(m *pb.WatchResponse) bool { return m.Canceled && !m.Created && m.WatchId == id }
	me, _ := wp.e.waitFor(ce, callTimeout, canceled)
	mk, _ := wp.k.waitFor(ck, callTimeout, canceled)
	wp.compareMsg(desc, me, mk)
}

// progress requests a progress notification on both and compares what arrives within wait.
func (wp *watchPair) progress(desc string, wait time.Duration) {
	wp.p.t.Helper()
	ce, ck := wp.e.len(), wp.k.len()
	wp.sendBoth(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}})
	var me, mk *pb.WatchResponse
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); me, _ = wp.e.waitFor(ce, wait, isProgress) }()
	go func() { defer wg.Done(); mk, _ = wp.k.waitFor(ck, wait, isProgress) }()
	wg.Wait()
	wp.compareMsg(desc, me, mk)
}

// syncTo waits until both streams have been sent everything up to rev: a progress notification
// at rev or later comes only once every watcher on the stream has caught up (etcd drops the
// request while one has not, so it is repeated). A stream without watchers (or whose last ones
// were canceled since) has nothing left to send, and etcd answers no progress request on it.
func (wp *watchPair) syncTo(rev int64) {
	wp.p.t.Helper()
	for _, w := range []*watchSide{wp.e, wp.k} {
		deadline := time.Now().Add(callTimeout)
		for w.live() > 0 {
			from := w.len()
			if err := w.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}}); err != nil {
				wp.p.t.Fatalf("watch %s on %s: sending a progress request: %v", wp.name, w.name, err)
			}
			m, err := w.waitFor(from, 250*time.Millisecond, func(m *pb.WatchResponse) bool {
				return isProgress(m) && m.Header.GetRevision() >= rev
			})
			if m != nil {
				break
			}
			if err != nil || time.Now().After(deadline) {
				wp.p.t.Fatalf("watch %s on %s: not caught up with revision %d (%v); received:%s", wp.name, w.name, rev, err, msgsString(w.snapshot()))
			}
		}
	}
}

// watchLog is what one side's stream sent, by watch ID.
type watchLog struct {
	controls map[int64][]*pb.WatchResponse // created, canceled and other event-less responses
	events   map[int64][]*mvccpb.Event
	refused  []*pb.WatchResponse // created-and-canceled responses, which carry no ID
	problems []string
}

func (wp *watchPair) collect(w *watchSide, s *side) *watchLog {
	l := &watchLog{controls: make(map[int64][]*pb.WatchResponse), events: make(map[int64][]*mvccpb.Event)}
	lastRev := make(map[int64]int64)
	fragment := make(map[int64]bool)
	for _, m := range w.snapshot() {
		if isProgress(m) {
			// Progress notifications answer the requests syncTo sends; compared where a test
			// asks for one.
			continue
		}
		m = cloneMsg(m)
		normalize(s, m)
		if len(m.Events) == 0 {
			if m.Created && m.Canceled {
				l.refused = append(l.refused, m)
			} else {
				l.controls[m.WatchId] = append(l.controls[m.WatchId], m)
			}
			continue
		}
		// Responses may group revisions differently, but one revision's events must never be
		// split over two responses (except in fragments).
		if first := m.Events[0].Kv.ModRevision; first == lastRev[m.WatchId] && !fragment[m.WatchId] {
			l.problems = append(l.problems, fmt.Sprintf("watch %d: revision %d split over two responses", m.WatchId, first))
		}
		lastRev[m.WatchId] = m.Events[len(m.Events)-1].Kv.ModRevision
		fragment[m.WatchId] = m.Fragment
		l.events[m.WatchId] = append(l.events[m.WatchId], m.Events...)
	}
	return l
}

func msgsString(ms []*pb.WatchResponse) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "\n    %v", m)
	}
	return b.String()
}

// compareAll catches both streams up to the current revision and compares everything they sent:
// the control responses of each watcher in full, and each watcher's events in order (type, kv,
// prev_kv, and so which events share a revision).
func (wp *watchPair) compareAll() {
	p := wp.p
	p.t.Helper()
	wp.syncTo(p.rev)
	le, lk := wp.collect(wp.e, p.e), wp.collect(wp.k, p.k)
	for _, pr := range le.problems {
		p.failf("watch %s: etcd: %s", wp.name, pr)
	}
	for _, pr := range lk.problems {
		p.failf("watch %s: ketch: %s", wp.name, pr)
	}
	if es, ks := msgsString(le.refused), msgsString(lk.refused); es != ks {
		p.failf("watch %s: refused watches differ\n  etcd:%s\n  ketch:%s", wp.name, es, ks)
	}
	ids := make(map[int64]bool)
	for id := range le.controls {
		ids[id] = true
	}
	for id := range lk.controls {
		ids[id] = true
	}
	for id := range le.events {
		ids[id] = true
	}
	for id := range lk.events {
		ids[id] = true
	}
	sorted := make([]int64, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	for _, id := range sorted {
		if es, ks := msgsString(le.controls[id]), msgsString(lk.controls[id]); es != ks {
			p.failf("watch %s/%d: control responses differ\n  etcd:%s\n  ketch:%s", wp.name, id, es, ks)
		}
		ee, ke := le.events[id], lk.events[id]
		n := min(len(ee), len(ke))
		i := 0
		for ; i < n; i++ {
			eb, _ := ee[i].Marshal()
			kb, _ := ke[i].Marshal()
			if !bytes.Equal(eb, kb) {
				break
			}
		}
		if i < n || len(ee) != len(ke) {
			p.failf("watch %s/%d: events differ from event %d on (etcd sent %d, ketch %d)\n  etcd:  %s\n  ketch: %s\n  the watcher:%s",
				wp.name, id, i, len(ee), len(ke), eventAt(ee, i), eventAt(ke, i), msgsString(le.controls[id]))
		}
	}
}

func eventAt(evs []*mvccpb.Event, i int) string {
	if i >= len(evs) {
		return "(none)"
	}
	return evs[i].String()
}
