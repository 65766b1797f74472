package main

import (
	"crypto/rand"
	"math"
	"slices"
	"time"
)

// percentiles returns the nearest-rank percentiles (0 < p <= 1) of d. It sorts d in place.
func percentiles(d []time.Duration, ps ...float64) []time.Duration {
	out := make([]time.Duration, len(ps))
	if len(d) == 0 {
		return out
	}
	slices.Sort(d)
	for i, p := range ps {
		rank := int(math.Ceil(p*float64(len(d)))) - 1
		out[i] = d[min(max(rank, 0), len(d)-1)]
	}
	return out
}

// payloadSource hands out value bytes. Values are random so that a datastore that compresses
// or deduplicates gets no advantage a real cluster's objects would not give it.
type payloadSource struct {
	buf []byte
}

func newPayloadSource() *payloadSource {
	b := make([]byte, 1<<20)
	_, _ = rand.Read(b)
	return &payloadSource{buf: b}
}

// value returns a size-byte value that differs for neighbouring i. Callers must not modify it.
func (p *payloadSource) value(size, i int) []byte {
	span := len(p.buf) - size
	off := (i * 4099) % span
	return p.buf[off : off+size]
}
