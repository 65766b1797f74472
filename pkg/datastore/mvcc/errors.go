package mvcc

import "errors"

// Errors with etcd's meaning; package etcdapi maps them to etcd's gRPC errors.
var (
	ErrCompacted        = errors.New("mvcc: required revision has been compacted")
	ErrFutureRev        = errors.New("mvcc: required revision is a future revision")
	ErrKeyNotFound      = errors.New("etcdserver: key not found")
	ErrLeaseNotFound    = errors.New("lease not found")
	ErrLeaseExists      = errors.New("lease already exists")
	ErrLeaseTTLTooLarge = errors.New("too large lease TTL")
)

// ErrClosed is returned for requests made after Close.
var ErrClosed = errors.New("datastore is shutting down")

// ErrCorrupt wraps every error that means the file cannot be trusted.
var ErrCorrupt = errors.New("datastore file is corrupt")

// ErrLocked is returned when another process holds the file.
var ErrLocked = errors.New("datastore file is already in use by another process")
