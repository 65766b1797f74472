package mvcc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
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

// crcTable is CRC-32C, which CPUs compute in hardware.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errChecksum means stored bytes are not what was written: bbolt keeps no checksums of its own.
var errChecksum = errors.New("checksum mismatch: the stored bytes were damaged")

// appendChecksum and verifyChecksum add and check a trailing CRC-32C.
func appendChecksum(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

func verifyChecksum(b []byte) ([]byte, error) {
	if len(b) < 4 {
		return nil, errShortRecord
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return nil, errChecksum
	}
	return body, nil
}

// encode serialises r: a flags byte, five uvarints, the key length and key, the value, and a
// checksum of all that.
func (r *record) encode() []byte {
	buf := make([]byte, 0, 1+6*binary.MaxVarintLen64+len(r.key)+len(r.value)+4)
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
	return appendChecksum(append(buf, r.value...))
}

var errShortRecord = errors.New("record is truncated")

// decodeRecord parses b. The key and value alias b, which bbolt owns only for the life of the
// transaction: callers copy what outlives it.
func decodeRecord(b []byte) (record, error) {
	var r record
	b, err := verifyChecksum(b)
	if err != nil {
		return r, err
	}
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
