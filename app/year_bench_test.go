package app

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/patchctl/patchctl/internal/metrics"

	"github.com/patchctl/patchctl/advisory"
	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/internal/jsonfmt"
	"github.com/patchctl/patchctl/inventory"
	"github.com/patchctl/patchctl/mirror"
	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/tracker"
)

var yearDays = flag.Int("year.days", 365, "simulated days of BenchmarkSimulatedYear")

// simClock is the simulation's clock.
type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *simClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// inProcess serves requests with a handler, without sockets.
type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// acceptAll is a channel that accepts every message and counts them.
type acceptAll struct{ n int }

func (a *acceptAll) Notify(context.Context, notify.Message) error { a.n++; return nil }

// upstream is twemproxy's real history plus one new release every releaseEvery days.
func upstream(b *testing.B, extra int, now time.Time) fs.FS {
	b.Helper()
	base := mirror.Twemproxy()
	out := fstest.MapFS{}
	err := fs.WalkDir(base, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(base, p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, "releases.json") && extra > 0 {
			var items []map[string]any
			if err := json.Unmarshal(data, &items); err != nil {
				return err
			}
			for i := range extra {
				tag := fmt.Sprintf("0.6.%d", i)
				items = append([]map[string]any{{"tag_name": tag, "name": tag, "draft": false, "prerelease": false,
					"html_url": "https://github.com/twitter/twemproxy/releases/tag/" + tag, "body": "Maintenance release.",
					"published_at": now.Format(time.RFC3339)}}, items...)
			}
			if data, err = json.Marshal(items); err != nil {
				return err
			}
		}
		out[p] = &fstest.MapFile{Data: data, ModTime: now}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// phase accumulates the cost of one kind of work over a measured day: wall time, and
// the CPU time of the simulation's thread, which other work on a busy machine does not
// inflate.
type phase struct {
	wall, cpu time.Duration
	n         int
}

func (p *phase) time(fn func() error) error {
	start, cpu := time.Now(), threadCPU()
	err := fn()
	p.wall += time.Since(start)
	p.cpu += threadCPU() - cpu
	p.n++
	return err
}

func (p *phase) String() string {
	n := time.Duration(max(p.n, 1))
	return fmt.Sprintf("%s CPU (%s wall)", (p.cpu / n).Round(time.Microsecond), (p.wall / n).Round(time.Microsecond))
}

// threadCPU is the CPU time of the calling thread (the simulation locks its thread).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// dayCost is what a measured day cost, and the store at its end.
type dayCost struct {
	day                       int
	poll, inventory, dispatch phase
	storeBytes                int64
	events, outbox            int
}

// BenchmarkSimulatedYear runs a daemon's year on an injected clock: a poll of
// twemproxy's history (through the HTTP cache, a new release every 10 days) every 5
// minutes, a 500-host inventory pass (one host down for a pass every 3 days: two
// alerts), the dispatcher after each poll, retention hourly (default retention: events 90
// days). It reports the cost of each and the store's size on measured days from the first
// to the last: flat once the retention window is full is the goal.
//
// To keep the year within minutes: the inventory's discovery (reading 500 stats ports) is
// replaced by its observations (it costs the network, not the store); the pass runs every
// 5 minutes on the measured days and hourly on the others, plus at every change; fsync
// is off (a constant per commit).
//
//	go test -run '^$' -bench SimulatedYear -benchtime 1x ./app/
func BenchmarkSimulatedYear(b *testing.B) {
	for b.Loop() {
		days := simulateYear(b, *yearDays)
		first, last := days[0], days[len(days)-1]
		report := func(name string, start, end phase) {
			b.ReportMetric(float64((start.cpu / time.Duration(max(start.n, 1))).Microseconds()), name+"-day1-cpu-µs")
			b.ReportMetric(float64((end.cpu / time.Duration(max(end.n, 1))).Microseconds()), name+"-last-cpu-µs")
		}
		report("poll", first.poll, last.poll)
		report("inventory", first.inventory, last.inventory)
		report("dispatch", first.dispatch, last.dispatch)
		b.ReportMetric(float64(first.storeBytes)/(1<<20), "store-day1-MiB")
		b.ReportMetric(float64(last.storeBytes)/(1<<20), "store-last-MiB")
		for _, d := range days {
			b.Logf("day %3d: store %5.1f MiB, %6d events, %4d outbox items; poll %s, inventory pass %s, dispatcher %s",
				d.day, float64(d.storeBytes)/(1<<20), d.events, d.outbox, &d.poll, &d.inventory, &d.dispatch)
		}
	}
}

// simulateYear returns the measured days: the first, a few in between, the last.
func simulateYear(b *testing.B, days int) []*dayCost {
	runtime.LockOSThread() // threadCPU measures this thread
	defer runtime.UnlockOSThread()
	measured := map[int]*dayCost{}
	for _, d := range []int{1, 30, 60, 90, 120, 180, 270, days} {
		if d <= days {
			measured[d-1] = &dayCost{day: d}
		}
	}
	ctx := context.Background()
	clk := &simClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	dir := b.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "patchctl.yml"), strings.NewReader("data_dir: "+dir+"\nmetrics:\n  listen: \"\"\n"))
	if err != nil {
		b.Fatal(err)
	}
	a, err := Open(ctx, cfg, Options{Now: clk.Now, noSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()

	var gh atomicHandler
	releases := 0
	gh.set(mirror.New(upstream(b, releases, clk.Now()), mirror.Options{RateLimit: 1 << 30, Now: clk.Now}))
	src, err := tracker.NewGitHub("twitter/twemproxy", tracker.GitHubOptions{APIURL: "http://mirror.test/", Tags: true,
		Advisories: true, Store: a.store, Transport: inProcess{&gh}, Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	tr := tracker.New(a.store, []tracker.Watch{{Source: src}}, tracker.Options{Now: clk.Now})

	var hosts strings.Builder
	hosts.WriteString("hosts:\n")
	for i := range 500 {
		fmt.Fprintf(&hosts, "  - {name: cache-%03d, environment: production, config: /etc/nutcracker/nutcracker.yml, stats: \"127.0.0.1:%d\", transport: {type: local}}\n", i, 20000+i)
	}
	inv, err := inventory.Parse([]byte(hosts.String()), "inventory.yml")
	if err != nil {
		b.Fatal(err)
	}
	feed, err := advisory.Load()
	if err != nil {
		b.Fatal(err)
	}
	f := &fleet{a: a, sem: make(chan struct{}, 1),
		hosts:   metrics.NewGaugeVec("h", "", "environment", "version"),
		exposed: metrics.NewGaugeVec("e", "", "environment", "severity"),
		polls:   metrics.NewCounterVec("p", "", "outcome")}
	st := &fleetState{inv: inv, feed: feed}

	sent := &acceptAll{}
	d := &notify.Dispatcher{Store: a.store, Notifier: sent, MaxAttempts: 12, MinBackoff: 2 * time.Second,
		MaxBackoff: 10 * time.Minute, DigestAfter: 10, Now: clk.Now}
	ret := config.Default().Retention
	retention := store.Retention{Events: ret.Events, Delivered: ret.Delivered, HTTPCache: ret.HTTPCache}

	obs := make([]inventory.Observation, 0, len(inv.Hosts))
	const step = 5 * time.Minute
	stepsPerDay := int(24 * time.Hour / step)
	for s := range days * stepsPerDay {
		day := s / stepsPerDay
		cost, full := measured[day]
		if !full {
			cost = &dayCost{}
		}
		clk.Advance(step)
		now := clk.Now()
		if s%(10*stepsPerDay) == stepsPerDay/2 {
			releases++
			gh.set(mirror.New(upstream(b, releases, now), mirror.Options{RateLimit: 1 << 30, Now: clk.Now}))
		}
		if err := cost.poll.time(func() error { _, err := tr.Poll(ctx); return err }); err != nil {
			b.Fatal(err)
		}
		// Between the measured days the pass runs hourly, and whenever a host changes: it
		// rewrites the same records each time, so only its changes accumulate.
		down := -1
		change := s%(3*stepsPerDay) == stepsPerDay || s%(3*stepsPerDay) == stepsPerDay+1
		if s%(3*stepsPerDay) == stepsPerDay {
			down = (s / (3 * stepsPerDay)) % len(inv.Hosts)
		}
		if !full && now.Minute() != 0 && !change {
			goto dispatch
		}
		obs = obs[:0]
		for i, h := range inv.Hosts {
			o := inventory.Observation{Host: h.Name, Environment: h.Environment, At: now, Answering: true,
				Version: "0.5.0", Source: inventory.SourceStats, Uptime: jsonfmt.Seconds(time.Hour)}
			if i == down {
				o = inventory.Observation{Host: h.Name, Environment: h.Environment, At: now, Error: "connection refused"}
			}
			obs = append(obs, o)
		}
		if err := cost.inventory.time(func() error { _, err := f.record(ctx, st, obs); return err }); err != nil {
			b.Fatal(err)
		}
	dispatch:
		if err := cost.dispatch.time(func() error { _, err := d.Flush(ctx); return err }); err != nil {
			b.Fatal(err)
		}
		if now.Minute() == 0 {
			if _, err := a.store.Prune(ctx, retention); err != nil {
				b.Fatal(err)
			}
		}
		if s%stepsPerDay == stepsPerDay-1 && full {
			cost.storeBytes, _ = a.store.Size(ctx)
			a.store.View(ctx, func(tx *store.Tx) error {
				evs, err := tx.Events(store.EventFilter{})
				cost.events = len(evs)
				items, _ := tx.Outbox(false)
				cost.outbox = len(items)
				return err
			})
		}
	}
	b.Logf("%d days: %d releases added upstream, %d messages delivered", days, releases, sent.n)
	out := make([]*dayCost, 0, len(measured))
	for _, c := range measured {
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y *dayCost) int { return x.day - y.day })
	return out
}

// atomicHandler lets the simulation swap the mirror as upstream changes.
type atomicHandler struct {
	mu sync.Mutex
	h  http.Handler
}

func (a *atomicHandler) set(h http.Handler) { a.mu.Lock(); a.h = h; a.mu.Unlock() }

func (a *atomicHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	h := a.h
	a.mu.Unlock()
	h.ServeHTTP(w, r)
}
