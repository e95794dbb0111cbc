package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchctl/patchctl/app"
	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/mirror"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/waves"
)

// daemon is an App serving in the test.
type daemon struct {
	app    *app.App
	addrs  app.Addrs
	cancel context.CancelFunc
	done   chan error
}

// serve starts a daemon for cfg; it stops with the test unless the test stops it.
func serve(t *testing.T, cfg *config.Config, opts app.Options) *daemon {
	t.Helper()
	a, err := app.Open(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{app: a, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan app.Addrs, 1)
	go func() { d.done <- a.Serve(ctx, func(ad app.Addrs) { ready <- ad }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-d.done:
		case <-time.After(60 * time.Second):
			t.Error("daemon did not stop")
		}
		a.Close()
	})
	select {
	case d.addrs = <-ready:
		return d
	case err := <-d.done:
		t.Fatalf("daemon exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not start")
	}
	return nil
}

func (d *daemon) call(t *testing.T, method string, args, result any) error {
	t.Helper()
	return app.NewClient(d.addrs.Socket).Call(context.Background(), method, args, result)
}

// eventually polls cond for up to a minute: CI machines are busy.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); time.Since(start) < time.Minute; time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// writeFile writes a test file and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// downHost is an inventory host nothing answers for: a closed stats port and a missing
// binary, read through the real local transport.
func downHost(t *testing.T, name string) string {
	return fmt.Sprintf("  - name: %s\n    environment: test\n    config: /etc/nutcracker/nutcracker.yml\n    stats: %s\n    binary: /nonexistent/nutcracker\n    transport: {type: local}\n",
		name, testenv.Addr(testenv.FreePort(t)))
}

// fleetConfig writes patchctl.yml and inventory.yml into one directory and loads them.
func fleetConfig(t *testing.T, extra string, hosts ...string) (*config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "inventory.yml", "hosts:\n"+strings.Join(hosts, ""))
	path := writeFile(t, dir, "patchctl.yml", "data_dir: state\nmetrics:\n  listen: 127.0.0.1:0\ninventory:\n  file: inventory.yml\n"+extra)
	cfg, err := config.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, dir
}

func outbox(t *testing.T, st *store.Store) []store.OutboxItem {
	t.Helper()
	items, err := st.Outbox(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// TestStartupRun: the daemon polls and takes inventory as soon as it starts, although
// neither schedule fires for months.
func TestStartupRun(t *testing.T) {
	gh := httptest.NewServer(mirror.New(mirror.Twemproxy(), mirror.Options{}))
	defer gh.Close()
	cfg, _ := fleetConfig(t, "github:\n  api_url: "+gh.URL+"\ntracker:\n  schedule: \"0 0 1 1 *\"\n  jitter: 0s\n  sources: [{repo: twitter/twemproxy}]\n",
		downHost(t, "h1"))
	cfg.Inventory.Schedule = "0 0 1 1 *"
	d := serve(t, cfg, app.Options{})
	eventually(t, "the start-up poll and inventory", func() bool {
		var st app.Status
		var fleet app.FleetReport
		return d.call(t, "status", nil, &st) == nil && len(st.Polls) == 1 && st.Polls[0].LastOutcome == "ok" &&
			d.call(t, "inventory", nil, &fleet) == nil && len(fleet.Hosts) == 1 && fleet.Hosts[0].Host == "h1"
	})
}

// TestNextRunLabels: each job's next run is its own, whatever order cron keeps its
// entries in (by time: the inventory's comes first here although it was added second).
func TestNextRunLabels(t *testing.T) {
	cfg, _ := fleetConfig(t, "tracker:\n  schedule: \"0 0 1 1 *\"\n  sources: [{repo: a/b, dir: .}]\n", downHost(t, "h1"))
	d := serve(t, cfg, app.Options{})
	var st app.Status
	if err := d.call(t, "status", nil, &st); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for name, spec := range map[string]string{"poll": cfg.Tracker.Schedule, "inventory": cfg.Inventory.Schedule} {
		s, err := config.ParseSchedule(spec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := time.Parse(time.RFC3339, st.NextRuns[name])
		if err != nil {
			t.Fatalf("next run of %s: %v (%v)", name, err, st.NextRuns)
		}
		// The daemon computed it a moment ago: it is the schedule's next time from then.
		if want := s.Next(now.Add(-time.Minute)); got.Before(want) || got.After(s.Next(now)) {
			t.Errorf("next %s = %s, want %s (%s)", name, got, s.Next(now), spec)
		}
	}
}

// TestConcurrentInventoryPassesAlertOnce: a scheduled and a manual pass running at the
// same time both see a host go down; only one alert is queued.
func TestConcurrentInventoryPassesAlertOnce(t *testing.T) {
	cfg, _ := fleetConfig(t, "", downHost(t, "h1"))
	a, err := app.Open(context.Background(), cfg, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			_, err := a.Call(context.Background(), "inventory.poll", nil)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	items := outbox(t, a.Store())
	if len(items) != 1 || !strings.HasPrefix(items[0].Key, "inventory:h1:0:stopped_answering") {
		t.Fatalf("outbox = %+v, want one stopped_answering alert", items)
	}
	for _, it := range items {
		if strings.ContainsAny(it.Key[len(it.Key)-1:], "0123456789") {
			t.Errorf("key %q ends in a number: a timestamp?", it.Key)
		}
	}
}

// TestReload: SIGHUP's channel and `patchctl reload` switch to a good file (a host added
// to the inventory is usable at once) and refuse a bad one, keeping the old configuration
// and saying file:line.
func TestReload(t *testing.T) {
	cfg, dir := fleetConfig(t, "tracker:\n  sources: [{repo: a/b, dir: .}]\n", downHost(t, "h1"))
	hup := make(chan struct{})
	d := serve(t, cfg, app.Options{Reload: hup})
	var hist json.RawMessage
	var ae *app.Error
	if err := d.call(t, "history", app.HostArgs{Host: "h2"}, &hist); !errors.As(err, &ae) || !strings.Contains(ae.Msg, `no host "h2"`) {
		t.Fatalf("h2 before reload: %v", err)
	}

	// SIGHUP path: the inventory gains h2.
	writeFile(t, dir, "inventory.yml", "hosts:\n"+downHost(t, "h1")+downHost(t, "h2"))
	hup <- struct{}{}
	eventually(t, "h2 to be known after SIGHUP", func() bool { return d.call(t, "history", app.HostArgs{Host: "h2"}, &hist) == nil })

	// A bad patchctl.yml: refused with its line, the old configuration stays.
	good, _ := os.ReadFile(filepath.Join(dir, "patchctl.yml"))
	writeFile(t, dir, "patchctl.yml", string(good)+"colour: blue\n")
	line := strings.Count(string(good), "\n") + 1
	err := d.call(t, "reload", nil, nil)
	if want := fmt.Sprintf("patchctl.yml:%d: unknown key \"colour\"", line); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("bad config reload: %v, want %q", err, want)
	}
	// A bad inventory: refused with its line too.
	writeFile(t, dir, "patchctl.yml", string(good))
	writeFile(t, dir, "inventory.yml", "hosts:\n  - name: h3\n    colour: blue\n")
	if err := d.call(t, "reload", nil, nil); err == nil || !strings.Contains(err.Error(), "inventory.yml:3") {
		t.Fatalf("bad inventory reload: %v", err)
	}
	if err := d.call(t, "history", app.HostArgs{Host: "h2"}, &hist); err != nil {
		t.Fatalf("h2 after refused reloads: %v", err)
	}
	// A change the daemon cannot apply while running is refused by name.
	writeFile(t, dir, "inventory.yml", "hosts:\n"+downHost(t, "h1"))
	writeFile(t, dir, "patchctl.yml", strings.Replace(string(good), "data_dir: state", "data_dir: elsewhere", 1))
	if err := d.call(t, "reload", nil, nil); err == nil || !strings.Contains(err.Error(), "data_dir") {
		t.Fatalf("data_dir change: %v", err)
	}
	// And a good file takes effect: h2 is gone.
	writeFile(t, dir, "patchctl.yml", string(good))
	var res app.ReloadResult
	if err := d.call(t, "reload", nil, &res); err != nil || res.Hosts != 1 {
		t.Fatalf("reload = %+v, %v", res, err)
	}
	if err := d.call(t, "history", app.HostArgs{Host: "h2"}, &hist); err == nil {
		t.Fatal("h2 still known after it left the inventory")
	}

	// Patch windows and rollout policies switch too: the next `windows` and `rollout plan`
	// use the reloaded ones.
	plan := func() error {
		return d.call(t, "rollout.plan", waves.Request{Version: "0.5.0", Policy: "reloaded"}, nil)
	}
	if err := plan(); err == nil || !strings.Contains(err.Error(), `no rollout policy "reloaded"`) {
		t.Fatalf("plan with a policy not yet configured: %v", err)
	}
	writeFile(t, dir, "patchctl.yml", string(good)+`patching:
  windows:
    - {name: reloaded-window, recurrence: "0 3 * * *", time_zone: UTC, duration: 1h, kind: staging}
rollouts:
  policies:
    - name: default
      waves: [{name: all, environments: [production]}]
    - name: reloaded
      waves: [{name: all, environments: [production]}]
`)
	if err := d.call(t, "reload", nil, nil); err != nil {
		t.Fatal(err)
	}
	var wr app.WindowsReport
	if err := d.call(t, "windows", app.WindowsArgs{Next: 1}, &wr); err != nil || len(wr.Windows) != 1 || wr.Windows[0].Name != "reloaded-window" {
		t.Fatalf("windows after reload = %+v, %v", wr.Windows, err)
	}
	if err := plan(); err != nil && strings.Contains(err.Error(), "no rollout policy") {
		t.Fatalf("plan with the reloaded policy: %v", err)
	}
}

// TestStopDuringSlowPoll: cancelling the daemon (what SIGTERM does) while GitHub stalls
// ends the poll at once, not at the shutdown timeout, and the store closes only after it.
func TestStopDuringSlowPoll(t *testing.T) {
	var mu sync.Mutex
	reached, released := make(chan struct{}, 8), make(chan struct{}, 8)
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached <- struct{}{}
		<-r.Context().Done() // stalls until the client gives up
		mu.Lock()
		released <- struct{}{}
		mu.Unlock()
	}))
	defer gh.Close()
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "patchctl.yml"), strings.NewReader("data_dir: "+dir+
		"\nmetrics:\n  listen: \"\"\ngithub:\n  api_url: "+gh.URL+"\n  timeout: 10m\ntracker:\n  jitter: 0s\nshutdown_timeout: 10m\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Open(context.Background(), cfg, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	ready := make(chan app.Addrs, 1)
	go func() { served <- a.Serve(ctx, func(ad app.Addrs) { ready <- ad }) }()
	addrs := <-ready
	<-reached // the start-up poll waits on GitHub
	// A manual poll queues behind it.
	manual := make(chan error, 1)
	go func() { manual <- app.NewClient(addrs.Socket).Call(context.Background(), "poll", nil, nil) }()
	eventually(t, "the manual poll to reach the daemon", func() bool {
		var st app.Status
		return app.NewClient(addrs.Socket).Call(context.Background(), "status", nil, &st) == nil
	})

	start := time.Now()
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Serve still running two minutes after the stop")
	}
	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Close still waiting two minutes after the stop")
	}
	if took := time.Since(start); took > 5*time.Minute {
		t.Fatalf("stopping took %s", took)
	}
	// The server notices the client's cancel when the closed connection reaches it, which
	// may be after Close returned.
	select {
	case <-released:
	case <-time.After(testenv.WaitTimeout):
		t.Fatal("the stalled request was never cancelled")
	}
	if err := <-manual; err == nil {
		t.Error("the manual poll reported success although the daemon stopped under it")
	}
}

// TestFailedDeployLeavesNoExpectedVersion: a deploy that does not end on its version
// puts back what the inventory expected before, so a later change to that version is
// reported as unexpected.
func TestFailedDeployLeavesNoExpectedVersion(t *testing.T) {
	dir := t.TempDir()
	host := fmt.Sprintf(`  - name: h1
    environment: test
    config: %s
    stats: %s
    transport: {type: local}
    deploy: {root: %s, restart: command, start: [/bin/false], stop: [/bin/true]}
`, filepath.Join(dir, "missing-nutcracker.yml"), testenv.Addr(testenv.FreePort(t)), filepath.Join(dir, "nc"))
	cfg, _ := fleetConfig(t, fmt.Sprintf("artifacts:\n  sources:\n    - kind: binary\n      path: %s\n", testenv.Nutcracker(t, "0.5.0")), host)
	a, err := app.Open(context.Background(), cfg, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	raw, err := a.Call(context.Background(), "deploy", json.RawMessage(`{"host":"h1","version":"0.5.0"}`))
	var reply app.OpReply
	if err == nil {
		json.Unmarshal(raw, &reply)
	}
	if err == nil && reply.Error == "" {
		t.Fatalf("deploy without a nutcracker.yml succeeded: %s", raw)
	}
	var v string
	var ok bool
	a.Store().View(context.Background(), func(tx *store.Tx) (err error) {
		ok, err = tx.Host(app.HostExpectedVersion, "h1", &v)
		return err
	})
	if ok {
		t.Fatalf("expected version %q left behind by a failed deploy (%v %s)", v, err, raw)
	}
}
