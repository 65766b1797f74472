package mvcc

import (
	"errors"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func grant(t *testing.T, s *Store, id, ttl int64) int64 {
	t.Helper()
	resp, err := s.LeaseGrant(bg, &pb.LeaseGrantRequest{ID: id, TTL: ttl})
	if err != nil {
		t.Fatalf("LeaseGrant: %v", err)
	}
	return resp.ID
}

func putLease(t *testing.T, s *Store, key string, id int64) {
	t.Helper()
	if _, err := s.Put(bg, &pb.PutRequest{Key: []byte(key), Value: []byte("v"), Lease: id}); err != nil {
		t.Fatalf("Put(%q, lease %d): %v", key, id, err)
	}
}

func TestLeaseRevokeDeletesKeysInOneRevision(t *testing.T) {
	s := openTest(t, Options{})
	id := grant(t, s, 0, 60)
	if id <= 0 {
		t.Fatalf("auto lease ID %d", id)
	}
	if _, err := s.LeaseGrant(bg, &pb.LeaseGrantRequest{ID: id, TTL: 60}); !errors.Is(err, ErrLeaseExists) {
		t.Fatalf("granting an existing ID: %v", err)
	}
	putLease(t, s, "a", id)
	putLease(t, s, "b", id)
	put(t, s, "c", "no lease")
	putLease(t, s, "d", id)
	put(t, s, "d", "moved off the lease") // detaches d
	ttl, err := s.LeaseTimeToLive(&pb.LeaseTimeToLiveRequest{ID: id, Keys: true})
	if err != nil || len(ttl.Keys) != 2 || ttl.GrantedTTL != 60 || ttl.TTL < 59 {
		t.Fatalf("TimeToLive: %v %v", ttl, err)
	}
	events := watchAll(t, s, s.Rev()+1)
	before := s.Rev()
	resp, err := s.LeaseRevoke(bg, &pb.LeaseRevokeRequest{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Revision != before+1 {
		t.Fatalf("revoke ended at revision %d, want %d", resp.Header.Revision, before+1)
	}
	if get(t, s, "a", 0) != nil || get(t, s, "b", 0) != nil || get(t, s, "c", 0) == nil || get(t, s, "d", 0) == nil {
		t.Fatal("revoke deleted the wrong keys")
	}
	got := <-events
	if len(got) != 2 || got[0].Type != mvccpb.DELETE || got[1].Kv.ModRevision != before+1 {
		t.Fatalf("revoke events: %v", got)
	}
	if _, err := s.LeaseRevoke(bg, &pb.LeaseRevokeRequest{ID: id}); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
	if _, err := s.LeaseRenew(bg, id); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("renewing a revoked lease: %v", err)
	}
}

func TestLeaseExpiry(t *testing.T) {
	s := openTest(t, Options{MinLeaseTTL: 1})
	short := grant(t, s, 0, 1)
	kept := grant(t, s, 0, 1)
	putLease(t, s, "short", short)
	putLease(t, s, "kept", kept)
	stop := time.After(3 * time.Second)
	renew := time.NewTicker(200 * time.Millisecond)
	defer renew.Stop()
	for done := false; !done; {
		select {
		case <-renew.C:
			if ttl, err := s.LeaseRenew(bg, kept); err != nil || ttl != 1 {
				t.Fatalf("renew: %d %v", ttl, err)
			}
		case <-stop:
			done = true
		}
	}
	if get(t, s, "short", 0) != nil {
		t.Fatal("key of an expired lease still there after 3s")
	}
	if get(t, s, "kept", 0) == nil {
		t.Fatal("key of a renewed lease was deleted")
	}
	if leases := s.LeaseLeases().Leases; len(leases) != 1 || leases[0].ID != kept {
		t.Fatalf("leases left: %v", leases)
	}
}

// TestLeaseSurvivesRestart: a restart keeps a lease's expiry, neither renewing it to a full TTL
// nor ending it early.
func TestLeaseSurvivesRestart(t *testing.T) {
	s := openTest(t, Options{})
	long := grant(t, s, 0, 3600)
	short := grant(t, s, 0, 3)
	putLease(t, s, "long", long)
	putLease(t, s, "short", short)
	time.Sleep(1500 * time.Millisecond)
	s = reopen(t, s)
	ttl, err := s.LeaseTimeToLive(&pb.LeaseTimeToLiveRequest{ID: long, Keys: true})
	if err != nil || ttl.TTL > 3599 || ttl.TTL < 3590 || len(ttl.Keys) != 1 {
		t.Fatalf("long lease after restart: %v %v", ttl, err)
	}
	st, err := s.LeaseTimeToLive(&pb.LeaseTimeToLiveRequest{ID: short})
	if err != nil || st.TTL > 2 {
		t.Fatalf("short lease after restart has TTL %v (%v), want at most 2 of its 3s left", st, err)
	}
	if get(t, s, "short", 0) == nil {
		t.Fatal("key dropped early")
	}
	eventually(t, 4*time.Second, "short lease to expire", func() bool { return get(t, s, "short", 0) == nil })
	// An expired lease found at start is revoked at once.
	gone := grant(t, s, 0, 2)
	putLease(t, s, "gone", gone)
	s.Close()
	time.Sleep(2500 * time.Millisecond)
	s = openTest(t, s.opts)
	eventually(t, 2*time.Second, "lease expired while down to be revoked", func() bool { return get(t, s, "gone", 0) == nil })
	if get(t, s, "long", 0) == nil {
		t.Fatal("long lease's key lost")
	}
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	s.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketLeases).Stats().KeyN; n != 1 {
			t.Errorf("%d leases stored, want 1", n)
		}
		return nil
	})
}

func TestLeaseTTLBounds(t *testing.T) {
	s := openTest(t, Options{})
	if _, err := s.LeaseGrant(bg, &pb.LeaseGrantRequest{TTL: MaxLeaseTTL + 1}); !errors.Is(err, ErrLeaseTTLTooLarge) {
		t.Fatalf("too large TTL: %v", err)
	}
	resp, err := s.LeaseGrant(bg, &pb.LeaseGrantRequest{TTL: 0})
	if err != nil || resp.TTL != s.opts.MinLeaseTTL {
		t.Fatalf("TTL below the minimum: %v %v", resp, err)
	}
}
