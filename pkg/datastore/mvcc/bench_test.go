package mvcc

import (
	"fmt"
	"sync/atomic"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func BenchmarkPutSequential(b *testing.B) {
	s := openTest(b, Options{})
	value := make([]byte, 256)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Put(bg, &pb.PutRequest{Key: []byte(fmt.Sprint("k", i)), Value: value}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPutParallel(b *testing.B) {
	s := openTest(b, Options{})
	value := make([]byte, 256)
	b.SetParallelism(16)
	b.ResetTimer()
	// Every put writes a key of its own: the goroutines share the counter, so it is atomic.
	var n atomic.Int64
	b.RunParallel(func(pb_ *testing.PB) {
		for pb_.Next() {
			key := []byte(fmt.Sprint("k", n.Add(1), "-", b.N))
			if _, err := s.Put(bg, &pb.PutRequest{Key: key, Value: value}); err != nil {
				// Not b.Fatal: this is not the benchmark's goroutine.
				b.Error(err)
				return
			}
		}
	})
}
