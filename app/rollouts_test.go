package app_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchctl/patchctl/app"
	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/waves"
)

// rig is a daemon in front of a fleet of real hosts, every one running nutcracker 0.4.1.
type rig struct {
	t     testing.TB
	hosts []*testenv.FleetProxy
	cfg   *config.Config
	c     *app.Client
	app   *app.App
}

// rolloutConfig writes the inventory of hosts and a patchctl.yml with policy (a rollouts:
// section) that deploys from the test's Debian packages.
func rolloutConfig(t testing.TB, hosts []*testenv.FleetProxy, policy string) *config.Config {
	t.Helper()
	inv := filepath.Join(t.TempDir(), "inventory.yml")
	// lab-1 is in no wave: plan reports it unmatched.
	lab := fmt.Sprintf("  - name: lab-1\n    environment: lab\n    stats: %s\n    config: /etc/nutcracker/nutcracker.yml\n    transport: {type: local}\n", testenv.Addr(testenv.FreePort(t)))
	if err := os.WriteFile(inv, []byte(testenv.FleetInventory(hosts, lab)), 0o644); err != nil {
		t.Fatal(err)
	}
	return testConfig(t, fmt.Sprintf("inventory:\n  file: %s\nartifacts:\n  sources:\n    - kind: deb\n      path: %s\nnotify:\n  interval: 100ms\n%s",
		inv, filepath.Join(testenv.BinDir(), "nutcracker_{{.Version}}.deb"), policy))
}

func newRig(t testing.TB, policy string, hosts ...testenv.FleetHost) *rig {
	t.Helper()
	return newRigWith(t, policy, app.Options{}, hosts...)
}

// newRigWith is newRig with daemon options (a test clock).
func newRigWith(t testing.TB, policy string, opts app.Options, hosts ...testenv.FleetHost) *rig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("deploys run nutcracker as the unprivileged nutcracker user: run as root (CI does)")
	}
	r := &rig{t: t, hosts: testenv.Fleet(t, hosts...)}
	r.cfg = rolloutConfig(t, r.hosts, policy)
	var addrs app.Addrs
	r.app, addrs = startDaemonWith(t, r.cfg, opts)
	r.c = app.NewClient(addrs.Socket)
	// Every host starts on 0.4.1, deployed the way an operator would: the first alone
	// (it fills the artifact cache), the others at once.
	var wg sync.WaitGroup
	errs := make([]error, len(r.hosts))
	for i, h := range r.hosts {
		if i == 1 {
			wg.Wait()
		}
		wg.Go(func() {
			var rep app.OpReply
			err := r.c.Call(ctxT(t, 6*time.Minute), "deploy", app.DeployArgs{Host: h.Name, Version: "0.4.1"}, &rep)
			if err == nil && rep.Error != "" {
				err = errors.New(rep.Error)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("deploy 0.4.1 to %s: %v", r.hosts[i].Name, err)
		}
	}
	return r
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func (r *rig) call(method string, args, result any) error {
	return r.c.Call(ctxT(r.t, 6*time.Minute), method, args, result)
}

func (r *rig) status(id string) waves.View {
	r.t.Helper()
	var v waves.View
	if err := r.call("rollout.status", app.RolloutArgs{ID: id}, &v); err != nil {
		r.t.Fatal(err)
	}
	return v
}

// waitFor polls a rollout until cond holds; busy CI machines get generous time. A rollout
// that settled elsewhere (finished, or paused with nothing in flight) fails at once: it
// would not move again by itself.
func (r *rig) waitFor(id, what string, cond func(waves.View) bool) waves.View {
	r.t.Helper()
	deadline := time.Now().Add(8 * time.Minute)
	for {
		v := r.status(id)
		if cond(v) {
			return v
		}
		if v.Settled() {
			r.t.Fatalf("rollout %s: %s: not reached; it settled %s (%s)\n%s", id, what, v.State, v.Reason, describeView(v))
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("rollout %s: %s: not reached; state %s (%s)\n%s", id, what, v.State, v.Reason, describeView(v))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func describeView(v waves.View) string {
	var b strings.Builder
	for _, w := range v.Waves {
		fmt.Fprintf(&b, "wave %s: %s %s\n", w.Name, w.State, w.Reason)
		for _, h := range w.Hosts {
			fmt.Fprintf(&b, "  %s: %s %s %s\n", h, v.Hosts[h].State, v.Hosts[h].Note, v.Hosts[h].Error)
		}
	}
	return b.String()
}

// expect checks every host runs version and carries traffic; backends may need a moment
// to be reconnected after a restart, so it polls.
func (r *rig) expect(version string, hosts ...*testenv.FleetProxy) {
	r.t.Helper()
	if len(hosts) == 0 {
		hosts = r.hosts
	}
	for _, h := range hosts {
		if err := h.WaitServing(r.t.Context(), version, 30*time.Second); err != nil {
			r.t.Fatalf("%s: %v", h.Name, err)
		}
	}
}

func state(s string) func(waves.View) bool { return func(v waves.View) bool { return v.State == s } }

const fleetPolicy = `rollouts:
  default_policy: fleet
  soak_interval: 200ms
  policies:
    - name: fleet
      hooks:
        before: [test, -d, /]
        after: ["true"]
        timeout: 3m # an SSH session takes tens of seconds on a loaded machine
      waves:
        - name: staging
          environments: [staging]
          soak: 1s
        - name: canary
          labels: {tier: canary}
          max_parallel: 2
          soak: 1s
          promote: true
        - name: production
          environments: [production]
          max_parallel: "50%"
          soak: 1s
`

// TestRolloutUpgradesFleet moves six real hosts (one reached over SSH) from 0.4.1 to 0.5.0
// in three waves, through the daemon: plan, start, a refused overlapping rollout and a
// refused manual deploy, the promote gate, and every host on 0.5.0 and serving at the end.
func TestRolloutUpgradesFleet(t *testing.T) {
	sshd := testenv.SSHD(t)
	canary := map[string]string{"tier": "canary"}
	r := newRig(t, fleetPolicy,
		testenv.FleetHost{Name: "stage-1", Environment: "staging"},
		testenv.FleetHost{Name: "prod-canary-1", Environment: "production", Labels: canary, SSH: sshd},
		testenv.FleetHost{Name: "prod-canary-2", Environment: "production", Labels: canary},
		testenv.FleetHost{Name: "prod-1", Environment: "production"},
		testenv.FleetHost{Name: "prod-2", Environment: "production"},
		testenv.FleetHost{Name: "prod-3", Environment: "production"},
	)

	var plan waves.Plan
	if err := r.call("rollout.plan", waves.Request{Version: "0.5.0"}, &plan); err != nil {
		t.Fatal(err)
	}
	sizes := []int{}
	for _, w := range plan.Waves {
		sizes = append(sizes, len(w.Hosts))
		for _, h := range w.Hosts {
			if h.Action != waves.ActionDeploy || h.Current != "0.4.1" || h.Lint != "ok" || h.Artifact == "" {
				t.Errorf("plan %s: %+v", h.Host, h)
			}
		}
	}
	if fmt.Sprint(sizes) != "[1 2 3]" || fmt.Sprint(plan.Unmatched) != "[lab-1]" || plan.Waves[2].MaxParallel != 2 {
		t.Fatalf("plan: sizes %v unmatched %v %+v", sizes, plan.Unmatched, plan.Waves)
	}

	var v waves.View
	if err := r.call("rollout.start", waves.Request{Version: "0.5.0"}, &v); err != nil {
		t.Fatal(err)
	}
	id := v.ID
	// One operation per host: a second rollout and a manual deploy are refused by name.
	err := r.call("rollout.start", waves.Request{Version: "0.5.0"}, nil)
	if err == nil || !strings.Contains(err.Error(), id) {
		t.Errorf("overlapping rollout: %v", err)
	}
	err = r.call("deploy", app.DeployArgs{Host: "prod-3", Version: "0.5.0"}, nil)
	if err == nil || !strings.Contains(err.Error(), "rollout "+id) {
		t.Errorf("manual deploy inside a rollout: %v", err)
	}

	v = r.waitFor(id, "waiting for promote after canary", func(v waves.View) bool { return v.AwaitingPromote || waves.Terminal(v.State) })
	if v.State != waves.StatePaused || v.Waves[1].State != waves.WavePassed || v.Waves[2].State != waves.WavePending {
		t.Fatalf("before promote: %s %s\n%s", v.State, v.Reason, describeView(v))
	}
	r.expect("0.5.0", r.hosts[:3]...)
	r.expect("0.4.1", r.hosts[3:]...)
	if err := r.call("rollout.resume", app.RolloutArgs{ID: id}, nil); err == nil {
		t.Error("resume of a rollout waiting for promote succeeded")
	}
	if err := r.call("rollout.promote", app.RolloutArgs{ID: id}, nil); err != nil {
		t.Fatal(err)
	}
	v = r.waitFor(id, "finished", func(v waves.View) bool { return waves.Terminal(v.State) })
	if v.State != waves.StateSucceeded {
		t.Fatalf("rollout ended %s: %s\n%s", v.State, v.Reason, describeView(v))
	}
	r.expect("0.5.0")
	for _, h := range v.Hosts {
		if h.State != waves.HostSucceeded || h.From != "0.4.1" {
			t.Errorf("host %+v", h)
		}
		t.Logf("%s: %s", h.Host, h.Finished.Sub(h.Started).Round(time.Millisecond))
	}
	for _, w := range v.Waves {
		t.Logf("wave %s: %s", w.Name, w.Finished.Sub(w.Started).Round(time.Millisecond))
	}

	// Every transition is an event; Slack messages are queued, threaded by rollout.
	var evs []store.Event
	if err := r.call("events", store.EventFilter{Subject: id}, &evs); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range evs {
		kinds[e.Kind]++
	}
	if kinds["rollout.started"] != 1 || kinds["rollout.wave.passed"] != 3 || kinds["rollout.promoted"] != 1 ||
		kinds["rollout.host.succeeded"] != 6 || kinds["rollout.succeeded"] != 1 {
		t.Errorf("events: %v", kinds)
	}
	items, err := r.app.Store().Outbox(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	threaded := 0
	for _, it := range items {
		if strings.Contains(string(it.Payload), `"thread":"rollout:`+id+`"`) {
			threaded++
		}
	}
	if threaded < 8 {
		t.Errorf("%d rollout messages in the outbox", threaded)
	}
	// The hosts are free again.
	if err := r.call("rollback", app.RollbackArgs{Host: "prod-3"}, nil); err != nil {
		t.Errorf("rollback after the rollout: %v", err)
	}
	r.expect("0.4.1", r.hosts[5])
}

// TestRolloutFailurePausesResumesAborts: a host whose backend is down fails its smoke
// test and rolls back, the rollout pauses at max_failures, resume goes on with the next
// hosts, a second failure pauses it again, and abort puts every host back on 0.4.1.
func TestRolloutFailurePausesResumesAborts(t *testing.T) {
	r := newRig(t, `rollouts:
  default_policy: strict
  policies:
    - name: strict
      waves:
        - name: staging
          environments: [staging]
        - name: production
          environments: [production]
          max_failures: 0
`,
		testenv.FleetHost{Name: "stage-1", Environment: "staging"},
		testenv.FleetHost{Name: "prod-1", Environment: "production"},
		testenv.FleetHost{Name: "prod-2", Environment: "production"},
		testenv.FleetHost{Name: "prod-3", Environment: "production"},
	)
	p1, p3 := r.hosts[1], r.hosts[3]
	p1.StopRedis()
	var v waves.View
	if err := r.call("rollout.start", waves.Request{Version: "0.5.0"}, &v); err != nil {
		t.Fatal(err)
	}
	id := v.ID
	v = r.waitFor(id, "paused after prod-1 failed", state(waves.StatePaused))
	if h := v.Hosts["prod-1"]; h.State != waves.HostFailed || !strings.Contains(v.Reason, "max_failures 0") {
		t.Fatalf("paused: %s\n%s", v.Reason, describeView(v))
	}
	if h := v.Hosts["prod-2"]; h.State != waves.HostPending {
		t.Fatalf("prod-2 went on after the failure: %+v", h)
	}
	p1.StartRedis()
	r.expect("0.4.1", p1)
	r.expect("0.5.0", r.hosts[0])

	p3.StopRedis()
	if err := r.call("rollout.resume", app.RolloutArgs{ID: id}, nil); err != nil {
		t.Fatal(err)
	}
	v = r.waitFor(id, "paused after prod-3 failed", func(v waves.View) bool {
		return v.State != waves.StateRunning && v.Hosts["prod-3"].State == waves.HostFailed
	})
	if v.State != waves.StatePaused || v.Hosts["prod-2"].State != waves.HostSucceeded {
		t.Fatalf("after resume: %s %s\n%s", v.State, v.Reason, describeView(v))
	}
	p3.StartRedis()
	r.expect("0.5.0", r.hosts[2])

	if err := r.call("rollout.abort", app.RolloutArgs{ID: id, Reason: "two hosts failed"}, nil); err != nil {
		t.Fatal(err)
	}
	v = r.waitFor(id, "aborted", func(v waves.View) bool { return waves.Terminal(v.State) })
	if v.State != waves.StateAborted {
		t.Fatalf("abort ended %s: %s\n%s", v.State, v.Reason, describeView(v))
	}
	r.expect("0.4.1")
	for _, name := range []string{"stage-1", "prod-2"} {
		if h := v.Hosts[name]; h.State != waves.HostRolledBack {
			t.Errorf("%s: %+v", name, h)
		}
	}
	// Staging (the older wave) was rolled back after production.
	if !v.Hosts["stage-1"].Reverted.After(v.Hosts["prod-2"].Reverted) {
		t.Errorf("stage-1 reverted at %s, before prod-2 at %s", v.Hosts["stage-1"].Reverted, v.Hosts["prod-2"].Reverted)
	}
}

// TestSoakGateFailsOnRisingErrors: during a wave's soak one host's redis stops while
// clients keep sending; the error counters rise and the gate fails the wave.
func TestSoakGateFailsOnRisingErrors(t *testing.T) {
	r := newRig(t, `rollouts:
  default_policy: soak
  soak_interval: 200ms
  policies:
    - name: soak
      waves:
        - name: staging
          environments: [staging]
          max_parallel: 2
          soak: 2m
        - name: production
          environments: [production]
`,
		testenv.FleetHost{Name: "stage-1", Environment: "staging"},
		testenv.FleetHost{Name: "stage-2", Environment: "staging"},
		testenv.FleetHost{Name: "prod-1", Environment: "production"},
	)
	var v waves.View
	if err := r.call("rollout.start", waves.Request{Version: "0.5.0"}, &v); err != nil {
		t.Fatal(err)
	}
	id := v.ID
	r.waitFor(id, "soaking", func(v waves.View) bool { return v.Waves[0].State == waves.WaveSoaking })
	bad := r.hosts[1]
	bad.StopRedis()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			bad.RedisTraffic(ctx)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	v = r.waitFor(id, "gate failed", func(v waves.View) bool { return v.State != waves.StateRunning })
	stop()
	<-done
	if v.State != waves.StatePaused || v.Waves[0].State != waves.WaveFailed || !strings.Contains(v.Waves[0].Reason, "soak gate") ||
		!strings.Contains(v.Waves[0].Reason, "stage-2") {
		t.Fatalf("after the backend failed: %s %s\n%s", v.State, v.Reason, describeView(v))
	}
	if v.Hosts["prod-1"].State != waves.HostPending {
		t.Errorf("production started after a failed gate: %+v", v.Hosts["prod-1"])
	}
	bad.StartRedis()
	if err := r.call("rollout.abort", app.RolloutArgs{ID: id}, nil); err != nil {
		t.Fatal(err)
	}
	v = r.waitFor(id, "aborted", func(v waves.View) bool { return waves.Terminal(v.State) })
	if v.State != waves.StateAborted {
		t.Fatalf("abort ended %s: %s\n%s", v.State, v.Reason, describeView(v))
	}
	r.expect("0.4.1")
}

// BenchmarkFleetRollout: six local hosts (each a real nutcracker in front of real redis and
// memcached) move from 0.4.1 to 0.5.0 through the daemon as one wave, with max_parallel 100%
// and with max_parallel 1 (the speed-up is the ratio), and as six `deploy` calls one after
// the other. Each fleet is fresh, so every run installs the same new build. The drain case
// adds a `before` hook that waits one second on each host, as draining it from a load
// balancer would. Run with -benchtime 1x or 3x: one iteration is five fleets.
func BenchmarkFleetRollout(b *testing.B) {
	hosts := make([]testenv.FleetHost, 6)
	for i := range hosts {
		hosts[i] = testenv.FleetHost{Name: fmt.Sprintf("proxy-%d", i+1), Environment: "production"}
	}
	policy := func(name, parallel, hooks string) string {
		return `    - name: ` + name + `
      waves:
        - name: production
          environments: [production]
          max_parallel: "` + parallel + `"
      hooks: ` + hooks + `
      # The benchmark measures speed; a busy machine's timeouts must not pause it.
      soak_thresholds: {client_err: 1000, server_err: 1000, server_timedout: 1000, forward_error: 1000, server_ejects: 1000}
`
	}
	const drain = `{before: [sleep, "1"], timeout: 1m}`
	policies := "rollouts:\n  default_policy: all\n  policies:\n" + policy("all", "100%", "{}") + policy("one", "1", "{}") +
		policy("all-drain", "100%", drain) + policy("one-drain", "1", drain)
	rollout := func(name string) time.Duration {
		b.StopTimer()
		r := newRig(b, policies, hosts...)
		b.StartTimer()
		t0 := time.Now()
		var v waves.View
		if err := r.call("rollout.start", waves.Request{Version: "0.5.0", Policy: name}, &v); err != nil {
			b.Fatal(err)
		}
		v = r.waitFor(v.ID, "finished", func(v waves.View) bool { return waves.Terminal(v.State) })
		d := time.Since(t0)
		if v.State != waves.StateSucceeded {
			b.Fatalf("rollout ended %s: %s", v.State, v.Reason)
		}
		return d
	}
	var parallel, oneByOne, drainParallel, drainOne, manual time.Duration
	for b.Loop() {
		parallel += rollout("all")
		oneByOne += rollout("one")
		drainParallel += rollout("all-drain")
		drainOne += rollout("one-drain")
		b.StopTimer()
		r := newRig(b, policies, hosts...)
		b.StartTimer()
		t0 := time.Now()
		for _, h := range r.hosts {
			var rep app.OpReply
			if err := r.call("deploy", app.DeployArgs{Host: h.Name, Version: "0.5.0"}, &rep); err != nil || rep.Error != "" {
				b.Fatalf("deploy %s: %v %s", h.Name, err, rep.Error)
			}
		}
		manual += time.Since(t0)
	}
	n := float64(b.N)
	b.ReportMetric(parallel.Seconds()/n, "s/rollout_parallel")
	b.ReportMetric(oneByOne.Seconds()/n, "s/rollout_one_at_a_time")
	b.ReportMetric(oneByOne.Seconds()/parallel.Seconds(), "speedup")
	b.ReportMetric(drainParallel.Seconds()/n, "s/drain_parallel")
	b.ReportMetric(drainOne.Seconds()/n, "s/drain_one_at_a_time")
	b.ReportMetric(drainOne.Seconds()/drainParallel.Seconds(), "speedup_drain")
	b.ReportMetric(manual.Seconds()/n, "s/six_deploys")
}
