package mvcc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// revKeyLen is the length of a revision's key in the revisions bucket: the main revision and the
// position of the change inside that revision's transaction, both big-endian so that bbolt's
// byte order is revision order.
const revKeyLen = 12

// revision identifies one change: the store revision it belongs to and its index within it.
type revision struct {
	main int64
	sub  int32
}

func (r revision) less(o revision) bool {
	return r.main < o.main || (r.main == o.main && r.sub < o.sub)
}

func appendRevKey(dst []byte, r revision) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.main))
	return binary.BigEndian.AppendUint32(dst, uint32(r.sub))
}

func revKey(r revision) []byte { return appendRevKey(make([]byte, 0, revKeyLen), r) }

func parseRevKey(b []byte) (revision, error) {
	if len(b) != revKeyLen {
		return revision{}, fmt.Errorf("revision key has %d bytes, want %d", len(b), revKeyLen)
	}
	return revision{main: int64(binary.BigEndian.Uint64(b)), sub: int32(binary.BigEndian.Uint32(b[8:]))}, nil
}

// record is one change in the revision log: a put, or a tombstone for a delete. The revision it
// was made at is its key in the bucket.
type record struct {
	tombstone bool
	key       []byte
	value     []byte
	createRev int64
	version   int64
	lease     int64
	// prevModRev and prevSub are the revision of the key's previous change (0 if it did not
	// exist). They let watchers find prev_kv from the log alone, without the index.
	prevModRev int64
	prevSub    int32
}

const flagTombstone = 1

// encode serialises r: a flags byte, five uvarints, the key length and key, then the value.
func (r *record) encode() []byte {
	buf := make([]byte, 0, 1+6*binary.MaxVarintLen64+len(r.key)+len(r.value))
	var flags byte
	if r.tombstone {
		flags |= flagTombstone
	}
	buf = append(buf, flags)
	buf = binary.AppendUvarint(buf, uint64(r.createRev))
	buf = binary.AppendUvarint(buf, uint64(r.version))
	buf = binary.AppendUvarint(buf, uint64(r.lease))
	buf = binary.AppendUvarint(buf, uint64(r.prevModRev))
	buf = binary.AppendUvarint(buf, uint64(uint32(r.prevSub)))
	buf = binary.AppendUvarint(buf, uint64(len(r.key)))
	buf = append(buf, r.key...)
	return append(buf, r.value...)
}

var errShortRecord = errors.New("record is truncated")

// decodeRecord parses b. The key and value alias b, which bbolt owns only for the life of the
// transaction: callers copy what outlives it.
func decodeRecord(b []byte) (record, error) {
	var r record
	if len(b) < 1 {
		return r, errShortRecord
	}
	r.tombstone = b[0]&flagTombstone != 0
	b = b[1:]
	var fields [6]uint64
	for i := range fields {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return r, errShortRecord
		}
		fields[i] = v
		b = b[n:]
	}
	r.createRev, r.version, r.lease, r.prevModRev = int64(fields[0]), int64(fields[1]), int64(fields[2]), int64(fields[3])
	r.prevSub = int32(uint32(fields[4]))
	keyLen := fields[5]
	if keyLen > uint64(len(b)) {
		return r, errShortRecord
	}
	r.key, r.value = b[:keyLen], b[keyLen:]
	return r, nil
}
