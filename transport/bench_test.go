package transport_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/transport"
)

func benchTransports(b *testing.B) map[string]transport.Transport {
	srv := testenv.SSHD(b)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitTimeout)
	defer cancel()
	ssh, err := transport.Dial(ctx, sshSpec(srv))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ssh.Close() })
	return map[string]transport.Transport{"local": &transport.Local{}, "ssh": ssh}
}

// BenchmarkRun measures the round trip of one command.
func BenchmarkRun(b *testing.B) {
	for name, tr := range benchTransports(b) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := tr.Run(context.Background(), []string{"true"}, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPut measures installing a nutcracker-sized (170 KB) file.
func BenchmarkPut(b *testing.B) {
	data := bytes.Repeat([]byte{0x7f}, 170<<10)
	for name, tr := range benchTransports(b) {
		b.Run(name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "nutcracker")
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := tr.Put(context.Background(), path, bytes.NewReader(data), 0o755); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSymlink measures pointing a link at one of two targets in turn, as a switch does.
func BenchmarkSymlink(b *testing.B) {
	for name, tr := range benchTransports(b) {
		b.Run(name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "current")
			targets := []string{"slots/0.4.1-a/nutcracker", "slots/0.5.0-b/nutcracker"}
			i := 0
			for b.Loop() {
				if err := tr.Symlink(context.Background(), targets[i%2], path); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
