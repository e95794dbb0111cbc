package inventory_test

import (
	"context"
	"fmt"
	"github.com/patchctl/patchctl/internal/testenv"
	"net"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/patchctl/patchctl/inventory"
)

// statsJSON builds what a nutcracker with 2 pools of 8 servers writes (about 5 KB).
func statsJSON(host int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"service":"nutcracker", "source":"cache-%d", "version":"0.5.0", "uptime":86400, "timestamp":1795312868, "total_connections":7000, "curr_connections":30`, host)
	for _, pool := range []string{"sessions", "fragments"} {
		fmt.Fprintf(&b, `, "%s": {"client_eof":64, "client_err":2, "client_connections":12, "server_ejects":1, "forward_error":1, "fragments":0`, pool)
		for s := range 8 {
			fmt.Fprintf(&b, `, "10.0.%d.%d:6379": {"server_eof":0, "server_err":0, "server_timedout":0, "server_connections":1, "server_ejected_at":0, "requests":270000, "request_bytes":11140000, "responses":270000, "response_bytes":1640000, "in_queue":0, "in_queue_bytes":0, "out_queue":0, "out_queue_bytes":0}`, host%250, s)
		}
		b.WriteString("}")
	}
	b.WriteString("}")
	return []byte(b.String())
}

// simulatedFleet starts one loopback listener per host; every silentEvery-th host accepts
// and never answers (0 = none).
func simulatedFleet(b *testing.B, n, silentEvery int) []inventory.Host {
	b.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	// Listeners, plus both ends of up to Concurrency connections, plus slack.
	need := uint64(n + 2*256 + 256)
	if lim.Cur < need {
		lim.Cur = min(need, lim.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < need {
			b.Fatalf("need %d open files, RLIMIT_NOFILE allows %d (hard %d): %v", need, lim.Cur, lim.Max, err)
		}
	}
	hosts := make([]inventory.Host, n)
	for i := range n {
		var handle func(net.Conn)
		if silentEvery > 0 && i%silentEvery == 0 {
			handle = func(c net.Conn) { c.Read(make([]byte, 1)) }
		} else {
			body := statsJSON(i)
			handle = func(c net.Conn) { c.Write(body) }
		}
		hosts[i] = host(fmt.Sprint("cache-", i), "production", testenv.ServeTCP(b, handle), "nutcracker")
	}
	return hosts
}

var memSamples = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/stacks:bytes"},
}

func liveBytes() uint64 {
	metrics.Read(memSamples)
	return memSamples[0].Value.Uint64() + memSamples[1].Value.Uint64()
}

// peakMemory samples live heap and stack bytes every millisecond until stop is called and
// returns the peak above the level when it started.
func peakMemory() (stop func() uint64) {
	runtime.GC()
	base := liveBytes()
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if v := liveBytes(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return max(peak.Load(), base) - base
	}
}

// BenchmarkDiscover reads 1,000 simulated stats ports; with 10% of them silent the pass
// must take about one StatsTimeout, not hosts/Concurrency timeouts.
func BenchmarkDiscover(b *testing.B) {
	for _, tc := range []struct {
		name        string
		silentEvery int
	}{
		{"1000hosts", 0},
		{"1000hosts-10pct-timeout", 10},
	} {
		b.Run(tc.name, func(b *testing.B) {
			hosts := simulatedFleet(b, 1000, tc.silentEvery)
			silent := 0
			if tc.silentEvery > 0 {
				silent = (len(hosts) + tc.silentEvery - 1) / tc.silentEvery
			}
			b.ReportAllocs()
			d := &inventory.Discoverer{StatsTimeout: time.Second}
			var peak uint64
			for b.Loop() {
				stop := peakMemory()
				obs := d.Discover(context.Background(), hosts)
				peak = max(peak, stop())
				answering := 0
				for _, o := range obs {
					if o.Answering {
						answering++
					}
				}
				if want := len(hosts) - silent; answering != want {
					b.Fatalf("%d answering, want %d", answering, want)
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
		})
	}
}
