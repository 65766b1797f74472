package mvcc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"k8s.io/klog/v2"
)

// MaxLeaseTTL is etcd's upper bound for a lease TTL, in seconds.
const MaxLeaseTTL = 9000000000

// leaseCheckInterval is how often expired leases are looked for, as in etcd.
const leaseCheckInterval = 500 * time.Millisecond

// lease is a granted lease. Its expiry is absolute wall-clock time and is stored, so a restart
// neither extends nor shortens it.
type lease struct {
	id     int64
	ttl    int64
	expiry time.Time
	keys   map[string]struct{}
}

// remaining is the whole seconds left, truncated as etcd reports them: a lease granted for 60s
// shows 59 a moment later.
func (l *lease) remaining(now time.Time) int64 {
	return int64(l.expiry.Sub(now).Seconds())
}

// lessor holds the committed leases and which keys are attached to them. The writer changes it
// when it publishes a batch; RPCs and the expiry loop read it.
type lessor struct {
	mu     sync.RWMutex
	leases map[int64]*lease
}

func newLessor(leases map[int64]*lease) *lessor { return &lessor{leases: leases} }

func (l *lessor) get(id int64) (ttl int64, expiry time.Time, ok bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	le, ok := l.leases[id]
	if !ok {
		return 0, time.Time{}, false
	}
	return le.ttl, le.expiry, true
}

func (l *lessor) keys(id int64) []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	le, ok := l.leases[id]
	if !ok {
		return nil
	}
	keys := make([]string, 0, len(le.keys))
	for k := range le.keys {
		keys = append(keys, k)
	}
	return keys
}

func (l *lessor) expired(now time.Time) []int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var ids []int64
	for id, le := range l.leases {
		if !now.Before(le.expiry) {
			ids = append(ids, id)
		}
	}
	return ids
}

// apply records a committed batch: grants, renewals, revocations, and the attachment changes of
// every key it wrote.
func (l *lessor) apply(b *batch) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, le := range b.leaseGrants {
		l.leases[id] = le
	}
	for id, expiry := range b.leaseRenews {
		if le, ok := l.leases[id]; ok {
			le.expiry = expiry
		}
	}
	for _, p := range b.pending {
		cur := p.state.lease // 0 when deleted
		if cur == p.origLease {
			continue
		}
		if le, ok := l.leases[p.origLease]; ok {
			delete(le.keys, string(p.key))
		}
		if le, ok := l.leases[cur]; ok {
			le.keys[string(p.key)] = struct{}{}
		}
	}
	for id := range b.leaseRevokes {
		delete(l.leases, id)
	}
}

func leaseKey(id int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

func encodeLease(ttl int64, expiry time.Time) []byte {
	buf := binary.AppendUvarint(nil, uint64(ttl))
	return appendChecksum(binary.BigEndian.AppendUint64(buf, uint64(expiry.UnixNano())))
}

func loadLeases(b *bolt.Bucket, idx *index) (map[int64]*lease, error) {
	leases := make(map[int64]*lease)
	err := scanVerified(b, func(k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("lease key has %d bytes", len(k))
		}
		v, err := verifyChecksum(v)
		if err != nil {
			return fmt.Errorf("lease %x: %w", k, err)
		}
		ttl, n := binary.Uvarint(v)
		if n <= 0 || len(v) != n+8 {
			return fmt.Errorf("lease %x is malformed", k)
		}
		id := int64(binary.BigEndian.Uint64(k))
		expiry := time.Unix(0, int64(binary.BigEndian.Uint64(v[n:])))
		leases[id] = &lease{id: id, ttl: int64(ttl), expiry: expiry, keys: make(map[string]struct{})}
		return nil
	})
	if err != nil {
		return nil, err
	}
	idx.tree.Ascend(func(ki *keyIndex) bool {
		if le, ok := leases[ki.state.lease]; ok && ki.state.exists() {
			le.keys[string(ki.key)] = struct{}{}
		}
		return true
	})
	return leases, nil
}

func (b *batch) leaseExists(id int64) bool {
	if b.leaseRevokes[id] {
		return false
	}
	if _, ok := b.leaseGrants[id]; ok {
		return true
	}
	_, _, ok := b.s.lessor.get(id)
	return ok
}

func (b *batch) leaseGrant(id, ttl int64) (*pb.LeaseGrantResponse, error) {
	if id == 0 {
		for id = randomID(); b.leaseExists(id); id = randomID() {
		}
	} else if b.leaseExists(id) {
		return nil, ErrLeaseExists
	}
	ttl = max(ttl, b.s.opts.MinLeaseTTL)
	expiry := time.Now().Add(time.Duration(ttl) * time.Second)
	if err := b.leas.Put(leaseKey(id), encodeLease(ttl, expiry)); err != nil {
		return nil, fmt.Errorf("storing lease: %w", err)
	}
	delete(b.leaseRevokes, id)
	b.leaseGrants[id] = &lease{id: id, ttl: ttl, expiry: expiry, keys: make(map[string]struct{})}
	b.dirty = true
	return &pb.LeaseGrantResponse{Header: &pb.ResponseHeader{Revision: b.rev}, ID: id, TTL: ttl}, nil
}

// leaseRevoke deletes the lease and, in one revision, every key attached to it.
func (b *batch) leaseRevoke(id int64) error {
	if !b.leaseExists(id) {
		return ErrLeaseNotFound
	}
	attached := make(map[string]struct{})
	for _, k := range b.s.lessor.keys(id) {
		attached[k] = struct{}{}
	}
	if le, ok := b.leaseGrants[id]; ok {
		for k := range le.keys {
			attached[k] = struct{}{}
		}
	}
	for k, p := range b.pending {
		if p.state.lease == id {
			attached[k] = struct{}{}
		}
	}
	keys := make([]string, 0, len(attached))
	for k := range attached {
		if st := b.state([]byte(k)); st.exists() && st.lease == id {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	b.beginTxn()
	for _, k := range keys {
		b.del([]byte(k), false)
	}
	b.endTxn()
	if err := b.leas.Delete(leaseKey(id)); err != nil {
		return fmt.Errorf("deleting lease: %w", err)
	}
	delete(b.leaseGrants, id)
	delete(b.leaseRenews, id)
	b.leaseRevokes[id] = true
	b.dirty = true
	return nil
}

func (b *batch) leaseRenew(id int64) (int64, error) {
	if !b.leaseExists(id) {
		return 0, ErrLeaseNotFound
	}
	ttl, expiry, ok := b.s.lessor.get(id)
	if le, granted := b.leaseGrants[id]; granted {
		ttl, expiry, ok = le.ttl, le.expiry, true
	}
	if !ok || !time.Now().Before(expiry) {
		// Expired but not yet revoked: too late to keep it.
		return 0, ErrLeaseNotFound
	}
	expiry = time.Now().Add(time.Duration(ttl) * time.Second)
	if err := b.leas.Put(leaseKey(id), encodeLease(ttl, expiry)); err != nil {
		return 0, fmt.Errorf("storing lease: %w", err)
	}
	if le, granted := b.leaseGrants[id]; granted {
		le.expiry = expiry
	} else {
		b.leaseRenews[id] = expiry
	}
	b.dirty = true
	return ttl, nil
}

func (b *batch) leaseExpire(ids []int64) {
	now := time.Now()
	for _, id := range ids {
		_, expiry, ok := b.s.lessor.get(id)
		if renewed, r := b.leaseRenews[id]; r {
			expiry = renewed
		}
		if !ok || b.leaseRevokes[id] || now.Before(expiry) {
			continue
		}
		if err := b.leaseRevoke(id); err != nil {
			klog.ErrorS(err, "Revoking expired lease", "lease", id)
		}
	}
}

func (s *Store) runLeaseExpiry() {
	t := time.NewTicker(leaseCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if ids := s.lessor.expired(time.Now()); len(ids) > 0 {
			err := s.submit(s.ctx, &writeOp{kind: opLeaseExpire, leaseIDs: ids})
			if err != nil && !errors.Is(err, ErrClosed) && s.ctx.Err() == nil {
				klog.ErrorS(err, "Revoking expired leases")
			}
		}
	}
}

// LeaseGrant creates a lease. An ID of 0 picks a free one.
func (s *Store) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if r.TTL > MaxLeaseTTL {
		return nil, ErrLeaseTTLTooLarge
	}
	op := &writeOp{kind: opLeaseGrant, leaseID: r.ID, leaseTTL: r.TTL}
	if err := s.submit(ctx, op); err != nil {
		return nil, err
	}
	return op.resp.(*pb.LeaseGrantResponse), nil
}

// LeaseRevoke deletes a lease and its keys.
func (s *Store) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	op := &writeOp{kind: opLeaseRevoke, leaseID: r.ID}
	if err := s.submit(ctx, op); err != nil {
		return nil, err
	}
	return op.resp.(*pb.LeaseRevokeResponse), nil
}

// LeaseRenew restarts a lease's TTL and returns it.
func (s *Store) LeaseRenew(ctx context.Context, id int64) (int64, error) {
	op := &writeOp{kind: opLeaseRenew, leaseID: id}
	if err := s.submit(ctx, op); err != nil {
		return 0, err
	}
	return op.resp.(int64), nil
}

// LeaseTimeToLive reports a lease's granted and remaining TTL and, if asked, its keys.
func (s *Store) LeaseTimeToLive(r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	s.lessor.mu.RLock()
	defer s.lessor.mu.RUnlock()
	le, ok := s.lessor.leases[r.ID]
	if !ok {
		return nil, ErrLeaseNotFound
	}
	resp := &pb.LeaseTimeToLiveResponse{Header: &pb.ResponseHeader{Revision: s.Rev()}, ID: r.ID, TTL: max(le.remaining(time.Now()), 0), GrantedTTL: le.ttl}
	if r.Keys {
		for k := range le.keys {
			resp.Keys = append(resp.Keys, []byte(k))
		}
		sort.Slice(resp.Keys, func(i, j int) bool { return string(resp.Keys[i]) < string(resp.Keys[j]) })
	}
	return resp, nil
}

// LeaseLeases lists every lease.
func (s *Store) LeaseLeases() *pb.LeaseLeasesResponse {
	s.lessor.mu.RLock()
	defer s.lessor.mu.RUnlock()
	resp := &pb.LeaseLeasesResponse{Header: &pb.ResponseHeader{Revision: s.Rev()}, Leases: make([]*pb.LeaseStatus, 0, len(s.lessor.leases))}
	for id := range s.lessor.leases {
		resp.Leases = append(resp.Leases, &pb.LeaseStatus{ID: id})
	}
	// Soonest expiry first, as etcd lists them.
	sort.Slice(resp.Leases, func(i, j int) bool {
		a, b := s.lessor.leases[resp.Leases[i].ID], s.lessor.leases[resp.Leases[j].ID]
		if !a.expiry.Equal(b.expiry) {
			return a.expiry.Before(b.expiry)
		}
		return a.id < b.id
	})
	return resp
}
