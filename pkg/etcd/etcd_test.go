package etcd

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ketch-k8s/ketch/pkg/bootstrap"
	"github.com/ketch-k8s/ketch/pkg/config"
	"github.com/ketch-k8s/ketch/pkg/datastore"
	"github.com/ketch-k8s/ketch/pkg/pki"
)

// A member per loopback address: 127.0.0.2 and up are this machine too, and nothing else
// listens on etcd's ports there.
func startTestMember(t *testing.T, tls *pki.Etcd, name string, ip net.IP, initial string) *Member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := StartMember(ctx, MemberConfig{DataDir: filepath.Join(t.TempDir(), "etcd"), Name: name, IP: ip, TLS: tls, InitialCluster: initial})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// joinTestMember joins a member called name at ip as a server joins: its certificates in tlsDir
// (which holds the cluster's shared CAs), added as a learner through cli, started, promoted. It
// returns the member's ID, the initial cluster it started with, and the member.
func joinTestMember(ctx context.Context, t *testing.T, cli *clientv3.Client, tlsDir, name string, ip net.IP) (uint64, string, *Member) {
	t.Helper()
	tls, err := pki.EnsureEtcd(tlsDir, name, []net.IP{ip})
	if err != nil {
		t.Fatal(err)
	}
	id, initial, err := AddLearner(ctx, cli, name, PeerURL(ip))
	if err != nil {
		t.Fatal(err)
	}
	m := startTestMember(t, tls, name, ip, initial)
	if err := Promote(ctx, cli, id); err != nil {
		t.Fatal(err)
	}
	return id, initial, m
}

func testClient(t *testing.T, tls *pki.Etcd, ip net.IP) *clientv3.Client {
	t.Helper()
	cli, err := NewClient(ClientConfig{Endpoints: []string{ClientURL(ip)}, CAFile: tls.ServerCA, CertFile: tls.ClientCert, KeyFile: tls.ClientKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// TestGrowAndJoin: a bbolt datastore moves into a new member with its keys and leases; a second
// member joins as a learner and is promoted; a member left by a failed join is replaced; a
// removed member is gone from the status.
func TestGrowAndJoin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ipA, ipB, ipC := net.ParseIP("127.0.0.2"), net.ParseIP("127.0.0.3"), net.ParseIP("127.0.0.4")
	tlsDirA := t.TempDir()
	if err := pki.EnsureSharedFiles(tlsDirA); err != nil {
		t.Fatal(err)
	}
	tlsA, err := pki.EnsureEtcd(tlsDirA, "a", []net.IP{ipA})
	if err != nil {
		t.Fatal(err)
	}

	// A bbolt datastore with a key, and a key on a lease.
	dsDir, sockDir := t.TempDir(), t.TempDir()
	ds, err := datastore.Start(datastore.Config{DataDir: dsDir, ListenClientURLs: []string{"unix://" + filepath.Join(sockDir, "ds.sock")}})
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewClient(ClientConfig{Endpoints: []string{"unix://" + filepath.Join(sockDir, "ds.sock")}})
	if err != nil {
		t.Fatal(err)
	}
	lease, err := src.Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1234 {
		if _, err := src.Put(ctx, fmt.Sprintf("/registry/things/%04d", i), fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.Put(ctx, "/registry/events/e", "event", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	src.Close()
	if err := ds.Stop(); err != nil {
		t.Fatal(err)
	}

	startTestMember(t, tlsA, "a", ipA, "")
	cli := testClient(t, tlsA, ipA)
	moved := filepath.Join(dsDir, "moved.db")
	keys, err := MoveFromBbolt(ctx, dsDir, sockDir, moved, cli)
	if err != nil {
		t.Fatal(err)
	}
	if keys != 1235 {
		t.Errorf("moved %d keys, want 1235", keys)
	}
	if _, err := os.Stat(moved); err != nil {
		t.Errorf("the bbolt file was not kept aside: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dsDir, datastore.DBFileName)); err == nil {
		t.Error("the bbolt file is still in place")
	}
	resp, err := cli.Get(ctx, "/registry/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 1235 {
		t.Fatalf("etcd holds %v keys (%v), want 1235", resp.Count, err)
	}
	ev, err := cli.Get(ctx, "/registry/events/e")
	if err != nil || len(ev.Kvs) != 1 || ev.Kvs[0].Lease == 0 {
		t.Fatalf("the leased key: %+v %v", ev, err)
	}
	ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(ev.Kvs[0].Lease))
	if err != nil || ttl.TTL < 500 || ttl.TTL > 600 {
		t.Errorf("the moved lease has %d s left (%v), want about 600", ttl.TTL, err)
	}

	// A member added by a join that never started: the next join of the same server replaces it.
	if _, err := cli.MemberAddAsLearner(ctx, []string{PeerURL(ipB)}); err != nil {
		t.Fatal(err)
	}
	tlsDirB := t.TempDir()
	b, err := bootstrap.Read(tlsDirA, true, config.ClusterSettings{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Write(tlsDirB, false); err != nil {
		t.Fatal(err)
	}
	id, initial, mb := joinTestMember(ctx, t, cli, tlsDirB, "b", ipB)
	if want := "a=" + PeerURL(ipA); !strings.Contains(initial, want) || !strings.Contains(initial, "b="+PeerURL(ipB)) {
		t.Errorf("initial cluster %q", initial)
	}
	if mb.ID() != id {
		t.Errorf("member b has ID %x, added as %x", mb.ID(), id)
	}
	st, err := Status(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 || st[0].Name != "a" || st[1].Name != "b" || st[0].Health != "healthy" || st[1].Health != "healthy" || st[1].Role == "learner" {
		t.Fatalf("status after the join: %+v", st)
	}
	if st[1].Revision != st[0].Revision {
		t.Errorf("b is at revision %d, a at %d", st[1].Revision, st[0].Revision)
	}
	list, _ := cli.MemberList(ctx)
	if w := EvenWarning(Voters(list.Members)); !strings.Contains(w, "2 voting members, an even number") {
		t.Errorf("EvenWarning: %q", w)
	}
	if IsLearner(list.Members, id) || IsLearner(list.Members, list.Header.MemberId) {
		t.Errorf("a promoted member or the answering one is listed as a learner: %v", list.Members)
	}

	// A learner that never starts (nothing listens at its peer URL) is removed as a failed join
	// removes it.
	idC, _, err := AddLearner(ctx, cli, "c", PeerURL(ipC))
	if err != nil {
		t.Fatal(err)
	}
	if list, err := cli.MemberList(ctx); err != nil || !IsLearner(list.Members, idC) {
		t.Errorf("the new learner is not listed as one: %v", err)
	}
	if err := Remove(ctx, cli, idC); err != nil {
		t.Fatal(err)
	}

	// A member whose Node is deleted right after it joined: etcd refuses to remove it until its
	// leader has been connected to it for 5 s, and the removal tries until etcd takes it.
	joinTestMember(ctx, t, cli, tlsDirB, "d", net.ParseIP("127.0.0.5"))
	failed, err := removeMembersNamed(ctx, cli, "d")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("d removed after %d refused tries", failed)
	// b as when its Node is deleted long after it joined.
	if failed, err = removeMembersNamed(ctx, cli, "b"); err != nil || failed != 0 {
		t.Fatalf("removing b: %v after %d failed tries, want at the first", err, failed)
	}
	if failed, err = removeMembersNamed(ctx, cli, "b"); err != nil || failed != 0 {
		t.Fatalf("removing b again: %v after %d failed tries, want nothing to do", err, failed)
	}
	if st, err := Status(ctx, cli); err != nil || len(st) != 1 || st[0].Role != "leader" {
		t.Fatalf("status after removing b, c and d: %+v %v", st, err)
	}
}

// TestRemoveBackoffNeverGivesUp: the removal of a deleted Node's member keeps trying every
// Cap (with jitter) for as long as the server runs, rather than stopping once the backoff
// reaches its cap, as wait.ExponentialBackoff does.
func TestRemoveBackoffNeverGivesUp(t *testing.T) {
	next := removeBackoff.DelayFunc()
	var last time.Duration
	for range 1000 {
		last = next()
	}
	if last < removeBackoff.Cap || last > removeBackoff.Cap+removeBackoff.Cap/5 {
		t.Errorf("the 1000th wait is %v, want about %v", last, removeBackoff.Cap)
	}
}
