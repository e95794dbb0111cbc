package rollout

import (
	"context"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/probe"
	"github.com/patchctl/patchctl/transport"
)

// benchHost is a host that runs 0.5.0 with 0.4.1 as its previous good build.
func benchHost(b *testing.B) (*Rollout, hostEnv) {
	e := newHost(b, startBackends(b), "")
	e.Interval = DefaultStatsInterval // what a production pidfile host runs: smoke tests do not wait for it
	r := New(openStore(b, e.Store), Options{})
	ctx := ctxT(b)
	for _, v := range []string{"0.4.1", "0.5.0"} {
		if _, err := r.Deploy(ctx, e.spec(), artifact(b, v), DeployOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	return r, e
}

// benchTransports are the ways a benchmark reaches its host: locally and over SSH (a real
// sshd on loopback).
var benchTransports = []struct {
	name string
	spec func(testing.TB, hostEnv) HostSpec
}{
	{"local", func(_ testing.TB, e hostEnv) HostSpec { return e.spec() }},
	{"ssh", func(tb testing.TB, e hostEnv) HostSpec { return e.sshSpec(tb) }},
}

// BenchmarkRollback is the wall time of Rollback, from the call to the smoke test passed,
// in process, on a host reached locally and over SSH.
func BenchmarkRollback(b *testing.B) {
	for _, tc := range benchTransports {
		b.Run(tc.name, func(b *testing.B) {
			r, e := benchHost(b)
			h := tc.spec(b, e)
			ctx := ctxOp(b)
			for b.Loop() {
				if _, err := r.Rollback(ctx, h, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNutcrackerStart is what nutcracker itself needs: exec to its stats port answering.
func BenchmarkNutcrackerStart(b *testing.B) {
	e := newHost(b, startBackends(b), "")
	bin := testenv.Nutcracker(b, "0.5.0")
	port := strings.TrimPrefix(e.Stats, "127.0.0.1:")
	ctx := ctxT(b)
	for b.Loop() {
		cmd := exec.Command(bin, "-c", e.Config, "-s", port, "-a", "127.0.0.1", "-o", "/dev/null")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := fetchStats(ctx, e.Stats); err == nil {
				break
			}
			if ctx.Err() != nil {
				b.Fatal(ctx.Err())
			}
			time.Sleep(100 * time.Microsecond)
		}
		b.StopTimer()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		b.StartTimer()
	}
}

// BenchmarkSwitchGap hammers the redis pool with SET while the host switches builds (0.5.0
// and 0.4.1 in turn) and reports, over the switches, the median, 90th percentile and
// longest time without a successful request, overall and by the build switched to, and
// the requests that failed per switch. A
// gap runs from one successful SET's reply to the next one's, so it holds the old proxy's
// stop, the new one's start and bind, the client's reconnect (after 1 ms, as a client's
// retry would) and its first request through the new proxy to redis.
func BenchmarkSwitchGap(b *testing.B) {
	for _, tc := range benchTransports {
		b.Run(tc.name, func(b *testing.B) { switchGap(b, tc.spec) })
	}
}

func switchGap(b *testing.B, spec func(testing.TB, hostEnv) HostSpec) {
	r, e := benchHost(b)
	h := spec(b, e)
	ctx := ctxOp(b)
	pools, err := parsePools(e.Config, mustRead(b, e.Config))
	if err != nil {
		b.Fatal(err)
	}
	target := probe.Target{Addr: pools[0].Listen, Protocol: probe.Redis, Timeout: time.Second}
	gaps := map[string][]time.Duration{} // by the version switched to; "" for all
	var failed int
	for b.Loop() {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var gap time.Duration
		var fails int
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := time.Now()
			var c *probe.Client
			for i := 0; ; i++ {
				select {
				case <-stop:
					if c != nil {
						c.Close()
					}
					return
				default:
				}
				var err error
				if c == nil {
					c, err = probe.Dial(ctx, target)
				}
				if err == nil {
					err = c.Set(ctx, []string{"bench:" + strconv.Itoa(i%64)}, []byte("v"), time.Minute)
				}
				now := time.Now()
				if err != nil {
					fails++
					if c != nil {
						c.Close()
						c = nil
					}
					// Retry after a millisecond, as a client's reconnect would: a loop that
					// spins takes a core from the switch it is timing.
					time.Sleep(time.Millisecond)
					continue
				}
				gap = max(gap, now.Sub(last))
				last = now
			}
		}()
		time.Sleep(20 * time.Millisecond)
		res, err := r.Rollback(ctx, h, "")
		if err != nil {
			b.Fatal(err)
		}
		close(stop)
		wg.Wait()
		for _, k := range []string{"", res.Operation.ToVersion} {
			gaps[k] = append(gaps[k], gap)
		}
		failed += fails
	}
	for k, g := range gaps {
		slices.Sort(g)
		ms := func(q float64) float64 { return float64(g[int(q*float64(len(g)-1))].Microseconds()) / 1000 }
		if k != "" {
			k = "-to-" + k
		}
		b.ReportMetric(ms(0.5), "p50-gap-ms"+k)
		b.ReportMetric(ms(0.9), "p90-gap-ms"+k)
		b.ReportMetric(ms(1), "max-gap-ms"+k)
	}
	b.ReportMetric(float64(failed)/float64(b.N), "failed-req/op")
}

func mustRead(b *testing.B, path string) []byte {
	data, err := (&transport.Local{}).ReadFile(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}
