package lint

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/testenv"
)

// BenchmarkNutcrackerCheck times the real `nutcracker -t` of 0.5.0 on the configuration of
// BenchmarkCheck, for comparison.
func BenchmarkNutcrackerCheck(b *testing.B) {
	path := filepath.Join(b.TempDir(), "big.yml")
	if err := os.WriteFile(path, GenerateConfig(1000, 20), 0o644); err != nil {
		b.Fatal(err)
	}
	bin := testenv.Nutcracker(b, "0.5.0")
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		ok, out, err := testenv.CheckConfig(ctx, bin, path)
		cancel()
		if err != nil || !ok {
			b.Fatalf("nutcracker -t: ok=%v err=%v %s", ok, err, out)
		}
	}
}
