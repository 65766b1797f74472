package mvcc

import (
	"fmt"
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
	var n int64
	b.RunParallel(func(pb_ *testing.PB) {
		for pb_.Next() {
			n++
			if _, err := s.Put(bg, &pb.PutRequest{Key: []byte(fmt.Sprint("k", n, "-", b.N)), Value: value}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
