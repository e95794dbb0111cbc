package artifact_test

import (
	"context"
	"testing"

	"github.com/patchctl/patchctl/artifact"
	"github.com/patchctl/patchctl/internal/testenv"
)

func benchSource(b *testing.B) artifact.Source {
	deb := testenv.Deb(b, "0.5.0")
	srv := newServer(b, map[string]string{"/nutcracker_0.5.0.deb": deb})
	return artifact.Source{Kind: artifact.KindDeb, URL: srv.URL + "/nutcracker_{{.Version}}.deb",
		SHA256: map[string]string{"0.5.0": sum(b, deb)}}
}

// BenchmarkResolveCached measures a resolve whose package is already in the cache: verify
// its digest, extract the binary, run `nutcracker -V`.
func BenchmarkResolveCached(b *testing.B) {
	src := benchSource(b)
	c := artifact.New(b.TempDir(), nil)
	if _, err := c.Resolve(context.Background(), src, "0.5.0", nil); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Resolve(context.Background(), src, "0.5.0", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolveDownload measures the same with an empty cache: the 90 KB package is
// fetched over loopback HTTP, verified and stored first.
func BenchmarkResolveDownload(b *testing.B) {
	src := benchSource(b)
	for b.Loop() {
		c := artifact.New(b.TempDir(), nil)
		if _, err := c.Resolve(context.Background(), src, "0.5.0", nil); err != nil {
			b.Fatal(err)
		}
	}
}
