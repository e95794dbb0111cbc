package inventory_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/advisory"
	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/inventory"
	"github.com/patchctl/patchctl/transport"
)

func host(name, env, stats, binary string) inventory.Host {
	return inventory.Host{Name: name, Environment: env, Stats: stats, Config: "/etc/nutcracker/nutcracker.yml",
		Binary: binary, Transport: &transport.Spec{Kind: "local"}}
}

func startProxy(t *testing.T, version string) *testenv.Proxy {
	listen := testenv.Addr(testenv.FreePort(t))
	conf := fmt.Sprintf("cache:\n  listen: %s\n  servers:\n   - 127.0.0.1:11211:1\n   - 127.0.0.1:11212:1\n", listen)
	return testenv.StartNutcracker(t, version, conf, listen)
}

func TestDiscoverFleet(t *testing.T) {
	old1, old2 := startProxy(t, "0.4.1"), startProxy(t, "0.4.1")
	new1, new2 := startProxy(t, "0.5.0"), startProxy(t, "0.5.0")
	down := testenv.Addr(testenv.FreePort(t)) // nothing listens
	garbage := testenv.ServeTCP(t, func(c net.Conn) { c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n")) })
	silent := testenv.ServeTCP(t, func(c net.Conn) { c.Read(make([]byte, 1)) })

	bin041, bin050 := testenv.Nutcracker(t, "0.4.1"), testenv.Nutcracker(t, "0.5.0")
	hosts := []inventory.Host{
		host("old-1", "production", old1.Stats, bin041),
		host("old-2", "staging", old2.Stats, bin041),
		host("new-1", "production", new1.Stats, bin050),
		host("new-2", "production", new2.Stats, bin050),
		host("down", "production", down, bin041),
		host("garbage", "staging", garbage, bin050),
		host("silent", "staging", silent, "/nonexistent/nutcracker"),
	}
	// Long enough for a real nutcracker to answer on a loaded machine: the silent host waits
	// it out once, and nothing else may wait for it.
	const statsTimeout = 10 * time.Second
	d := &inventory.Discoverer{Dial: dialLocal, StatsTimeout: statsTimeout, ProbeTimeout: testenv.WaitTimeout}
	ctx, cancel := context.WithTimeout(context.Background(), 2*testenv.WaitTimeout)
	defer cancel()
	start := time.Now()
	obs := d.Discover(ctx, hosts)
	took := time.Since(start)

	// The silent host costs one stats timeout; its -V fails at once. Nothing else waits, so
	// a second stats timeout never passes.
	if took > 2*statsTimeout {
		t.Errorf("discovery took %s, want about the %s stats timeout", took, statsTimeout)
	}
	want := []struct {
		version   string
		source    inventory.Source
		answering bool
		err       string
	}{
		{"0.4.1", inventory.SourceStats, true, ""},
		{"0.4.1", inventory.SourceStats, true, ""},
		{"0.5.0", inventory.SourceStats, true, ""},
		{"0.5.0", inventory.SourceStats, true, ""},
		{"0.4.1", inventory.SourceBinary, false, "stats port unreachable"},
		{"0.5.0", inventory.SourceBinary, false, "malformed stats"},
		{"", "", false, "did not answer in time"},
	}
	for i, w := range want {
		o := obs[i]
		if o.Host != hosts[i].Name || o.Environment != hosts[i].Environment || o.Version != w.version ||
			o.Source != w.source || o.Answering != w.answering || o.At.IsZero() {
			t.Errorf("%s: %+v; want version %q from %q, answering %v", hosts[i].Name, o, w.version, w.source, w.answering)
		}
		if w.err == "" && o.Error != "" || !strings.Contains(o.Error, w.err) {
			t.Errorf("%s: error %q, want %q", hosts[i].Name, o.Error, w.err)
		}
		if w.source == inventory.SourceStats && (len(o.Pools) != 1 || o.Pools[0].Name != "cache" || o.Pools[0].Servers != 2) {
			t.Errorf("%s: pools %+v", hosts[i].Name, o.Pools)
		}
	}
	if !strings.Contains(obs[6].Error, "/nonexistent/nutcracker") {
		t.Errorf("silent: error %q does not name the failed -V", obs[6].Error)
	}

	// The report built from these observations.
	feed, err := advisory.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	releases := []inventory.Release{
		{Version: "v0.4.0", Published: time.Date(2014, 10, 18, 0, 0, 0, 0, time.UTC)},
		{Version: "v0.4.1", Published: time.Date(2015, 6, 22, 0, 0, 0, 0, time.UTC)},
		{Version: "v0.5.0-RC1", Prerelease: true, Published: time.Date(2021, 7, 6, 0, 0, 0, 0, time.UTC)},
		{Version: "0.5.0", Published: time.Date(2021, 7, 13, 0, 0, 0, 0, time.UTC)},
	}
	as, err := inventory.NewAssessor(feed, releases)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	exps := as.AssessAll(obs, now)
	for i, e := range exps {
		switch obs[i].Version {
		case "0.4.1":
			if e.Behind != 1 || e.MaxSeverity != advisory.SeverityHigh || len(e.Findings) != 8 || e.Findings[0].DaysExposed != 1633 || e.Latest != "0.5.0" {
				t.Errorf("%s: %+v", e.Host, e)
			}
		case "0.5.0":
			if e.Behind != 0 || len(e.Findings) != 1 || e.MaxSeverity != advisory.SeverityLow {
				t.Errorf("%s: %+v", e.Host, e)
			}
		case "":
			if e.Exposed() || e.Version != "" {
				t.Errorf("%s: %+v", e.Host, e)
			}
		}
	}
	sum := inventory.Summarize(exps)
	if len(sum) != 2 || sum[0].Environment != "production" || sum[1].Environment != "staging" {
		t.Fatalf("summary = %+v", sum)
	}
	prod, stg := sum[0], sum[1]
	if prod.Hosts != 4 || prod.Answering != 3 || prod.Exposed != 4 || prod.Behind != 2 ||
		prod.ByVersion["0.4.1"] != 2 || prod.ByVersion["0.5.0"] != 2 ||
		prod.ByExposure["high"] != 2 || prod.ByExposure["low"] != 2 {
		t.Errorf("production = %+v", prod)
	}
	if stg.Hosts != 3 || stg.Answering != 1 || stg.ByVersion[inventory.Unknown] != 1 || stg.ByExposure[inventory.Unknown] != 1 ||
		stg.ByVersion["0.4.1"] != 1 || stg.ByVersion["0.5.0"] != 1 {
		t.Errorf("staging = %+v", stg)
	}
}

func TestDiscoverWithoutDial(t *testing.T) {
	down := testenv.Addr(testenv.FreePort(t))
	d := &inventory.Discoverer{StatsTimeout: 200 * time.Millisecond}
	obs := d.Discover(context.Background(), []inventory.Host{host("down", "e", down, "nutcracker")})
	if obs[0].Version != "" || !strings.Contains(obs[0].Error, "unreachable") || !strings.Contains(obs[0].Error, "no transport") {
		t.Errorf("observation = %+v", obs[0])
	}
}

func TestDiscoverCancelled(t *testing.T) {
	silent := testenv.ServeTCP(t, func(c net.Conn) { c.Read(make([]byte, 1)) })
	var hosts []inventory.Host
	for i := range 20 {
		hosts = append(hosts, host(fmt.Sprint("h", i), "e", silent, "/nonexistent/nutcracker"))
	}
	d := &inventory.Discoverer{Dial: dialLocal, Concurrency: 4, StatsTimeout: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	obs := d.Discover(ctx, hosts)
	// Only the cancel can end it before the hour-long stats timeout.
	if took := time.Since(start); took > testenv.WaitTimeout {
		t.Errorf("cancelled discovery took %s", took)
	}
	for _, o := range obs {
		if o.Answering || o.Error == "" {
			t.Errorf("%+v", o)
		}
	}
}
