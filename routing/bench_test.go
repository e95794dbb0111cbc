package routing

import (
	"fmt"
	"testing"
)

func benchmarkLookup(b *testing.B, dist, hash string) {
	var servers []Server
	for i := range 4 {
		servers = append(servers, Server{Addr: fmt.Sprintf("10.0.0.%d:6379", i+1), Weight: i + 1})
	}
	r, err := New(Pool{Hash: hash, Distribution: dist, Servers: servers})
	if err != nil {
		b.Fatal(err)
	}
	keys := SampleKeys(1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_ = r.Lookup(keys[i&1023])
	}
}

func BenchmarkLookup(b *testing.B) {
	for _, dist := range []string{Ketama, Modula} {
		for _, hash := range []string{"fnv1a_64", "md5", "murmur"} {
			b.Run(dist+"/"+hash, func(b *testing.B) { benchmarkLookup(b, dist, hash) })
		}
	}
}
