package waves_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchctl/patchctl/waves"
)

// BenchmarkRollout1000Hosts is the orchestrator's own cost: plan (pre-checks of every host)
// and every transition of a rollout over 1,000 hosts in three waves, with a per-host step
// that does nothing. It reports the time per host and how much the store file grew per host.
func BenchmarkRollout1000Hosts(b *testing.B) {
	const n = 1000
	tg := targets(n)
	for b.Loop() {
		b.StopTimer()
		path := filepath.Join(b.TempDir(), "s.db")
		h := start(b, path, tg, newInstant(tg, "0.4.1"), policy("pause"))
		before := fileSize(b, path)
		b.StartTimer()
		t0 := time.Now()
		v, err := h.eng.Start(context.Background(), waves.Request{Version: "0.5.0"})
		if err != nil {
			b.Fatal(err)
		}
		v = h.wait(b, v.ID, over)
		elapsed := time.Since(t0)
		b.StopTimer()
		if v.State != waves.StateSucceeded {
			b.Fatalf("ended %s: %s", v.State, v.Reason)
		}
		h.stop()
		b.ReportMetric(float64(elapsed.Microseconds())/n, "µs/host")
		b.ReportMetric(float64(fileSize(b, path)-before)/n, "store-bytes/host")
		b.StartTimer()
	}
}

func fileSize(b *testing.B, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}
