package robustness

import (
	"fmt"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	// keyPrefix looks like an apiserver resource prefix; every key the workload writes lives
	// under it so one prefix watch sees every revision.
	keyPrefix = "/registry/robustness/"
	// numKeys is small so that concurrent clients conflict often.
	numKeys = 10
)

var prefixEnd = clientv3.GetPrefixRangeEnd(keyPrefix)

func keyName(k int) string { return fmt.Sprintf("%sk%02d", keyPrefix, k) }

// keyIndex maps a key back to its index, or -1 for a key the workload never writes.
func keyIndex(key []byte) int {
	s, ok := strings.CutPrefix(string(key), keyPrefix+"k")
	if !ok || len(s) != 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return -1
	}
	k, _ := strconv.Atoi(s)
	if k >= numKeys {
		return -1
	}
	return k
}

// rangeStart is where a page starting at key index k begins: the prefix for the first page,
// otherwise the previous key followed by NUL, which is how the apiserver encodes continue keys.
func rangeStart(k int) string {
	if k <= 0 {
		return keyPrefix
	}
	return keyName(k-1) + "\x00"
}

// valueString encodes a write id as an object-sized value whose padding depends on the id, so a
// truncated or mixed-up value is detected without storing values in the history.
func valueString(id int64) string {
	return fmt.Sprintf("w%d;%s", id, strings.Repeat("x", int(id*37%1500)))
}

// valueID decodes a value written by valueString, or returns -1 for anything else.
func valueID(v []byte) int64 {
	s, _, ok := strings.Cut(string(v), ";")
	if !ok || len(s) < 2 || s[0] != 'w' {
		return -1
	}
	id, err := strconv.ParseInt(s[1:], 10, 64)
	if err != nil || id <= 0 || valueString(id) != string(v) {
		return -1
	}
	return id
}

func toKV(kv *mvccpb.KeyValue) KV {
	return KV{
		Key:       keyIndex(kv.Key),
		Value:     valueID(kv.Value),
		ModRev:    kv.ModRevision,
		CreateRev: kv.CreateRevision,
		Version:   kv.Version,
		Lease:     kv.Lease,
	}
}

func toKVs(kvs []*mvccpb.KeyValue) []KV {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]KV, len(kvs))
	for i, kv := range kvs {
		out[i] = toKV(kv)
	}
	return out
}
