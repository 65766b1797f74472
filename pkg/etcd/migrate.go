package etcd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/klog/v2"

	"github.com/ketch-k8s/ketch/pkg/datastore"
)

// copyPage is how many keys each read of the migration takes; copyTxn how many puts go in one
// transaction (etcd allows 128 operations per transaction by default).
const (
	copyPage = 500
	copyTxn  = 100
)

// MoveFromBbolt copies every key of the bbolt datastore in dataDir into the etcd cluster dst
// reaches, with a lease of the same remaining time for keys that had one (events, leases), and
// then renames the bbolt file to movedFile, where it stays. The bbolt datastore is served on a
// socket in sockDir only for the copy, so that it is read through the same etcd API
// kube-apiserver used. Object UIDs and contents are kept; resource versions start anew, and
// clients relist as after any restore. If the copy fails half way, the bbolt file is still in
// place, and the caller starts over on an empty etcd.
func MoveFromBbolt(ctx context.Context, dataDir, sockDir, movedFile string, dst *clientv3.Client) (keys int, err error) {
	sock := filepath.Join(sockDir, "datastore-migrate.sock")
	ds, err := datastore.Start(datastore.Config{DataDir: dataDir, ListenClientURLs: []string{"unix://" + sock}, Name: "migrate"})
	if err != nil {
		return 0, fmt.Errorf("opening the bbolt datastore to move it: %w", err)
	}
	defer ds.Stop()
	src, err := NewClient(ClientConfig{Endpoints: []string{"unix://" + sock}})
	if err != nil {
		return 0, err
	}
	defer src.Close()

	leases := map[clientv3.LeaseID]clientv3.LeaseID{} // bbolt's lease -> etcd's
	leaseFor := func(old int64) (clientv3.LeaseID, error) {
		if old == 0 {
			return 0, nil
		}
		if id, ok := leases[clientv3.LeaseID(old)]; ok {
			return id, nil
		}
		ttl, err := src.TimeToLive(ctx, clientv3.LeaseID(old))
		if err != nil {
			return 0, fmt.Errorf("reading lease %x: %w", old, err)
		}
		left := ttl.TTL
		if left <= 0 {
			left = 1 // expired while the server was down: it goes at once, as it would have
		}
		g, err := dst.Grant(ctx, left)
		if err != nil {
			return 0, fmt.Errorf("granting a lease in etcd: %w", err)
		}
		leases[clientv3.LeaseID(old)] = g.ID
		return g.ID, nil
	}

	start := time.Now()
	from := "\x00"
	for {
		resp, err := src.Get(ctx, from, clientv3.WithRange("\x00"), clientv3.WithLimit(copyPage))
		if err != nil {
			return keys, fmt.Errorf("reading the bbolt datastore: %w", err)
		}
		var ops []clientv3.Op
		flush := func() error {
			if len(ops) == 0 {
				return nil
			}
			if _, err := dst.Txn(ctx).Then(ops...).Commit(); err != nil {
				return fmt.Errorf("writing to etcd: %w", err)
			}
			keys += len(ops)
			ops = ops[:0]
			return nil
		}
		for _, kv := range resp.Kvs {
			lease, err := leaseFor(kv.Lease)
			if err != nil {
				return keys, err
			}
			var opts []clientv3.OpOption
			if lease != 0 {
				opts = append(opts, clientv3.WithLease(lease))
			}
			ops = append(ops, clientv3.OpPut(string(kv.Key), string(kv.Value), opts...))
			if len(ops) == copyTxn {
				if err := flush(); err != nil {
					return keys, err
				}
			}
		}
		if err := flush(); err != nil {
			return keys, err
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	if err := ds.Stop(); err != nil {
		return keys, fmt.Errorf("closing the bbolt datastore: %w", err)
	}
	if err := os.Rename(filepath.Join(dataDir, datastore.DBFileName), movedFile); err != nil {
		return keys, fmt.Errorf("keeping the bbolt datastore aside: %w", err)
	}
	klog.InfoS("Moved the bbolt datastore into etcd", "keys", keys, "leases", len(leases), "took", time.Since(start), "keptAt", movedFile)
	return keys, nil
}
