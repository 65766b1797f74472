// Package mvcc is ketch's multi-version key-value store: etcd's revision model (revisions,
// create/mod revisions, versions, compaction, leases, watch history) kept in a single bbolt
// file. It knows etcd's API types but nothing of gRPC; package etcdapi puts it on the wire.
//
// Layout of the bbolt file:
//
//	revs   revision (12 bytes) -> record: every retained change, in revision order
//	leases lease ID (8 bytes)  -> TTL and absolute expiry
//	meta   a few named values: format, current and compacted revision, cluster and member IDs
//
// The key index (key -> revisions) lives in memory and is rebuilt from revs at start.
//
// Concurrency: one writer goroutine applies every write, group-committing all requests that
// are waiting into a single bbolt transaction, and publishes the result (index, revision,
// events) only after the commit is on disk. Readers never see uncommitted state. Lock order is
// idxMu before dbMu; the writer therefore releases dbMu before it takes idxMu to publish, and no
// goroutine takes idxMu while it holds a bbolt transaction.
package mvcc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Options configure a Store.
type Options struct {
	// Path is the bbolt file. It is created if missing.
	Path string
	// LockTimeout bounds the wait for the file lock another process may hold.
	LockTimeout time.Duration
	// HistoryRevisions caps the history kept when no client compacts: once the log holds more
	// than this many revisions beyond the last compaction, the store compacts itself. 0 keeps
	// everything.
	HistoryRevisions int64
	// EventCacheBytes bounds the in-memory copy of recent events that synced watchers read;
	// older events are read back from the file.
	EventCacheBytes int
	// MinLeaseTTL is the shortest TTL a lease is granted, in seconds.
	MinLeaseTTL int64
	// InitialMmapSize reserves address space so the file rarely needs remapping (a remap waits
	// for every open read transaction).
	InitialMmapSize int
	// CheckFile, when set, runs bbolt's complete consistency check of the file somewhere a
	// damaged file cannot crash this process (package datastore runs `ketch datastore check`).
	// It is used after an unclean shutdown; see load.
	CheckFile func(path string) error
}

func (o *Options) setDefaults() {
	if o.LockTimeout == 0 {
		o.LockTimeout = 2 * time.Second
	}
	if o.EventCacheBytes == 0 {
		o.EventCacheBytes = 8 << 20
	}
	if o.MinLeaseTTL == 0 {
		o.MinLeaseTTL = 2
	}
	if o.InitialMmapSize == 0 {
		o.InitialMmapSize = 1 << 30
	}
}

// Store is the datastore's state. All methods are safe for concurrent use.
type Store struct {
	opts Options

	// dbMu guards the db handle, which Defragment and a reload after a failed commit replace.
	dbMu sync.RWMutex
	db   *bolt.DB

	// idxMu guards idx against the writer's publishing. rev and compactRev change only under
	// it too, so holders of idxMu see all three consistent, but they are atomic so that code
	// holding a bbolt transaction can read them without taking idxMu.
	idxMu      sync.RWMutex
	idx        *index
	rev        atomic.Int64
	compactRev atomic.Int64

	clusterID, memberID uint64

	lessor *lessor
	events *eventLog
	// prevKVWatchers counts watchers that want prev_kv; while it is zero the writer skips
	// reading previous values for events.
	prevKVWatchers atomic.Int64

	writes chan *writeOp
	// writeErr, once set, fails every write: the disk lost data it had accepted, so only a
	// restart (which rereads the file) can be trusted.
	writeErr atomic.Pointer[error]

	// records is the number of records in the file as of the last commit (see metaRecords);
	// only the writer changes it.
	records atomic.Int64

	// commits counts bbolt commits, to show group commit at work.
	commits atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open opens or creates the store at opts.Path, rebuilds the index and starts the writer.
func Open(opts Options) (*Store, error) {
	opts.setDefaults()
	s := &Store{opts: opts, writes: make(chan *writeOp, 1024)}
	if err := s.load(); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.runWriter() }()
	go func() { defer s.wg.Done(); s.runLeaseExpiry() }()
	return s, nil
}

// Close stops the writer and the lease loop and closes the file. Requests still queued fail.
// Its last commit writes bbolt's freelist, so the next open need not walk the whole file.
func (s *Store) Close() error {
	s.cancel()
	s.wg.Wait()
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	var err error
	if s.writeErr.Load() == nil {
		s.db.NoFreelistSync = false
		err = s.db.Update(func(tx *bolt.Tx) error { return putInt(tx.Bucket(bucketMeta), metaCleanClose, int64(tx.ID())) })
		if err != nil {
			err = fmt.Errorf("recording a clean shutdown in %s: %w", s.opts.Path, err)
		}
	}
	return errors.Join(err, s.db.Close())
}

// Rev returns the current revision.
func (s *Store) Rev() int64 { return s.rev.Load() }

// Revs returns the current and the compacted revision.
func (s *Store) Revs() (rev, compactRev int64) { return s.rev.Load(), s.compactRev.Load() }

// Commits returns how many bbolt transactions the writer has committed.
func (s *Store) Commits() int64 { return s.commits.Load() }

// ClusterID and MemberID identify this store in response headers; they are fixed at creation.
func (s *Store) ClusterID() uint64 { return s.clusterID }

// MemberID is the ID of the store's single member.
func (s *Store) MemberID() uint64 { return s.memberID }

// randomID returns a random positive int64, for cluster, member and lease IDs.
func randomID() int64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("reading random bytes: %v", err))
	}
	if id := int64(binary.BigEndian.Uint64(b[:]) >> 1); id != 0 {
		return id
	}
	return 1
}
