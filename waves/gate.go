package waves

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/nutcracker"
	"github.com/patchctl/patchctl/store"
)

// statsTimeout bounds one read of a host's stats port by the gate.
const statsTimeout = 5 * time.Second

// counters sums the error counters the soak gate watches over a snapshot's pools and servers.
func counters(s *nutcracker.Stats, taken time.Time) store.Counters {
	c := store.Counters{Answered: true, Uptime: s.Uptime, Taken: taken, Values: map[string]int64{}}
	for _, p := range s.Pools {
		c.Values["client_err"] += p.ClientErr
		c.Values["forward_error"] += p.ForwardError
		c.Values["server_ejects"] += p.ServerEjects
		for _, sv := range p.Servers {
			c.Values["server_err"] += sv.ServerErr
			c.Values["server_timedout"] += sv.ServerTimedout
		}
	}
	return c
}

// snapshot reads the counters of hosts at once; a host that does not answer is recorded
// as such.
func (e *Engine) snapshot(ctx context.Context, hosts []string) map[string]store.Counters {
	out := make(map[string]store.Counters, len(hosts))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, checkConcurrency)
	for _, h := range hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			sctx, cancel := context.WithTimeout(ctx, statsTimeout)
			defer cancel()
			c := store.Counters{Taken: e.opts.Now()}
			if s, err := e.opts.Hosts.Stats(sctx, h); err == nil {
				c = counters(s, c.Taken)
			}
			mu.Lock()
			out[h] = c
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// rise is how much each counter of a host grew since base. A proxy restarted since base
// (its uptime is shorter than the time that passed) counts from zero.
func rise(base, cur store.Counters) map[string]int64 {
	restarted := !base.Answered || cur.Uptime+2 < base.Uptime+int64(cur.Taken.Sub(base.Taken)/time.Second)
	out := map[string]int64{}
	for k, v := range cur.Values {
		b := base.Values[k]
		if restarted || v < b {
			b = 0
		}
		out[k] = v - b
	}
	return out
}

// gate compares a wave's counters with its baseline and says why it fails ("" = passes).
func gate(t config.SoakThresholds, base, cur map[string]store.Counters) string {
	sums := map[string]int64{}
	by := map[string][]string{}
	var silent []string
	hosts := make([]string, 0, len(cur))
	for h := range cur {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	for _, h := range hosts {
		c := cur[h]
		if !c.Answered {
			if base[h].Answered {
				silent = append(silent, h)
			}
			continue
		}
		for k, d := range rise(base[h], c) {
			if d > 0 {
				sums[k] += d
				by[k] = append(by[k], fmt.Sprintf("%s +%d", h, d))
			}
		}
	}
	var reasons []string
	limits := t.Counters()
	names := make([]string, 0, len(limits))
	for k := range limits {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if sums[k] > limits[k] {
			reasons = append(reasons, fmt.Sprintf("%s rose by %d (allowed %d: %s)", k, sums[k], limits[k], strings.Join(by[k], ", ")))
		}
	}
	if int64(len(silent)) > t.Unanswered {
		reasons = append(reasons, fmt.Sprintf("%d host(s) stopped answering on the stats port (allowed %d): %s", len(silent), t.Unanswered, strings.Join(silent, ", ")))
	}
	return strings.Join(reasons, "; ")
}
