package waves_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/nutcracker"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/waves"
)

// instant is a per-host step that changes nothing and takes no time: what is left is the
// orchestrator's own cost. It remembers each host's version so skips and reverts are
// real, and fails the hosts named in fail.
type instant struct {
	mu       sync.Mutex
	version  map[string]string
	deploys  map[string]int
	fail     map[string]bool
	checkErr map[string]string
	since    map[string]time.Time // the attempt each host's last deploy belonged to
}

var _ waves.Hosts = (*instant)(nil)

func newInstant(hosts []waves.Target, version string) *instant {
	s := &instant{version: map[string]string{}, deploys: map[string]int{}, fail: map[string]bool{}, checkErr: map[string]string{}, since: map[string]time.Time{}}
	for _, h := range hosts {
		s.version[h.Name] = version
	}
	return s
}

func (s *instant) Check(_ context.Context, host, _ string) waves.Check {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := waves.Check{Current: s.version[host], Artifact: "nutcracker", Lint: "ok", Problems: []string{}}
	if p := s.checkErr[host]; p != "" {
		c.Problems = append(c.Problems, p)
	}
	return c
}

func (s *instant) Deploy(_ context.Context, host, version string, since time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// As the real step: an attempt already made is reported, not made again.
	if s.since[host].Equal(since) && s.version[host] == version {
		return nil
	}
	s.since[host] = since
	s.deploys[host]++
	if s.fail[host] {
		return errors.New("smoke test failed")
	}
	s.version[host] = version
	return nil
}

func (s *instant) Revert(_ context.Context, host, version string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version[host] = version
	return nil
}

func (s *instant) Hook(context.Context, string, []string) error { return nil }

func (s *instant) Stats(_ context.Context, host string) (*nutcracker.Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &nutcracker.Stats{Version: s.version[host], Uptime: 1000}, nil
}

func targets(n int) []waves.Target {
	out := make([]waves.Target, n)
	for i := range out {
		env := "production"
		switch {
		case i < n/100+1:
			env = "staging"
		case i < n/10+1:
			env = "canary"
		}
		out[i] = waves.Target{Name: fmt.Sprintf("proxy-%04d", i), Environment: env}
	}
	return out
}

func policy(onFailure string) config.Rollouts {
	return config.Rollouts{DefaultPolicy: "p", SoakInterval: time.Millisecond, Policies: []config.RolloutPolicy{{
		Name: "p", OnFailure: onFailure, PrecheckFailure: "exclude",
		Waves: []config.Wave{
			{Name: "staging", Environments: []string{"staging"}, MaxParallel: "1", MaxFailures: "0"},
			{Name: "canary", Environments: []string{"canary"}, MaxParallel: "10%", MaxFailures: "0"},
			{Name: "production", Environments: []string{"production"}, MaxParallel: "10%", MaxFailures: "1"},
		}}}}
}

type harness struct {
	st     *store.Store
	eng    *waves.Engine
	hosts  *instant
	cancel context.CancelFunc
	done   chan struct{}
}

func start(t testing.TB, path string, tg []waves.Target, hosts *instant, pol config.Rollouts) *harness {
	t.Helper()
	st, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{st: st, hosts: hosts, done: make(chan struct{})}
	h.eng = waves.New(st, waves.Options{Policies: func() config.Rollouts { return pol }, Targets: func() []waves.Target { return tg }, Hosts: hosts})
	var ctx context.Context
	ctx, h.cancel = context.WithCancel(context.Background())
	go func() { h.eng.Run(ctx); close(h.done) }()
	for !h.eng.Running() {
		time.Sleep(time.Millisecond)
	}
	return h
}

func (h *harness) stop() {
	h.cancel()
	<-h.done
	h.st.Close()
}

func (h *harness) wait(t testing.TB, id string, cond func(waves.View) bool) waves.View {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		v, err := h.eng.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout %s stuck in %s (%s)", id, v.State, v.Reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func finished(v waves.View) bool { return waves.Terminal(v.State) || v.State == waves.StatePaused }

func over(v waves.View) bool { return waves.Terminal(v.State) }

func TestPlanAssignsFirstMatchingWave(t *testing.T) {
	tg := append(targets(30), waves.Target{Name: "lab-1", Environment: "lab"})
	h := start(t, filepath.Join(t.TempDir(), "s.db"), tg, newInstant(tg, "0.4.1"), policy("pause"))
	defer h.stop()
	h.hosts.version["proxy-0005"] = "0.5.0"
	h.hosts.checkErr["proxy-0007"] = "stats port: connection refused"
	p, err := h.eng.Plan(context.Background(), waves.Request{Version: "0.5.0"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	actions := map[string]string{}
	for _, w := range p.Waves {
		got[w.Name] = len(w.Hosts)
		for _, ph := range w.Hosts {
			actions[ph.Host] = ph.Action
		}
	}
	if got["staging"] != 1 || got["canary"] != 3 || got["production"] != 26 || fmt.Sprint(p.Unmatched) != "[lab-1]" {
		t.Errorf("plan: %v unmatched %v", got, p.Unmatched)
	}
	if actions["proxy-0005"] != waves.ActionSkip || actions["proxy-0007"] != waves.ActionExclude || actions["proxy-0008"] != waves.ActionDeploy {
		t.Errorf("actions: %v", actions)
	}
	if p.Waves[2].MaxParallel != 3 || p.Waves[2].MaxFailures != 1 {
		t.Errorf("production limits: %+v", p.Waves[2])
	}
	for _, bad := range []waves.Request{{}, {Version: "0.5.0", Policy: "nope"}, {Version: "0.5.0", Waves: []string{"qa"}}} {
		if _, err := h.eng.Plan(context.Background(), bad); !errors.Is(err, waves.ErrUsage) {
			t.Errorf("plan %+v: %v", bad, err)
		}
	}
}

// The API the patch-window flow uses: staging only with a hold, then the rest after a
// promote; a pause with a reason survives until resumed.
func TestHoldPromotePauseResume(t *testing.T) {
	tg := targets(40)
	h := start(t, filepath.Join(t.TempDir(), "s.db"), tg, newInstant(tg, "0.4.1"), policy("pause"))
	defer h.stop()
	ctx := context.Background()
	v, err := h.eng.Start(ctx, waves.Request{Version: "0.5.0", HoldAfter: []string{"staging"}})
	if err != nil {
		t.Fatal(err)
	}
	v = h.wait(t, v.ID, finished)
	if !v.AwaitingPromote || v.Waves[0].State != waves.WavePassed || v.Waves[1].State != waves.WavePending {
		t.Fatalf("after staging: %+v", v)
	}
	if _, err := h.eng.Resume(ctx, v.ID); !errors.Is(err, waves.ErrState) {
		t.Errorf("resume instead of promote: %v", err)
	}
	if _, err := h.eng.Start(ctx, waves.Request{Version: "0.5.0"}); !errors.Is(err, waves.ErrConflict) {
		t.Errorf("overlapping rollout: %v", err)
	}
	if _, err := h.eng.Promote(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Pause(ctx, v.ID, "window closed"); err != nil && !errors.Is(err, waves.ErrState) {
		t.Fatal(err)
	}
	v = h.wait(t, v.ID, finished)
	if v.State == waves.StatePaused {
		if v.Reason != "window closed" {
			t.Errorf("reason %q", v.Reason)
		}
		if _, err := h.eng.Resume(ctx, v.ID); err != nil {
			t.Fatal(err)
		}
		v = h.wait(t, v.ID, over)
	}
	if v.State != waves.StateSucceeded {
		t.Fatalf("ended %s: %s", v.State, v.Reason)
	}
	for _, tgt := range tg {
		if h.hosts.version[tgt.Name] != "0.5.0" || h.hosts.deploys[tgt.Name] != 1 {
			t.Errorf("%s: %s after %d deploys", tgt.Name, h.hosts.version[tgt.Name], h.hosts.deploys[tgt.Name])
		}
	}
}

// on_failure abort: a failed canary host stops the rollout and every changed host goes
// back; hosts of later waves are never touched.
func TestFailureAborts(t *testing.T) {
	tg := targets(40)
	h := start(t, filepath.Join(t.TempDir(), "s.db"), tg, newInstant(tg, "0.4.1"), policy("abort"))
	defer h.stop()
	h.hosts.fail["proxy-0003"] = true
	v, err := h.eng.Start(context.Background(), waves.Request{Version: "0.5.0"})
	if err != nil {
		t.Fatal(err)
	}
	v = h.wait(t, v.ID, over)
	if v.State != waves.StateAborted || v.Waves[1].State != waves.WaveFailed {
		t.Fatalf("ended %s: %s", v.State, v.Reason)
	}
	for _, tgt := range tg {
		if h.hosts.version[tgt.Name] != "0.4.1" {
			t.Errorf("%s left on %s", tgt.Name, h.hosts.version[tgt.Name])
		}
		if tgt.Environment == "production" && h.hosts.deploys[tgt.Name] != 0 {
			t.Errorf("%s of a later wave was deployed", tgt.Name)
		}
	}
}

// A daemon stopped in the middle of a rollout and started again continues it; no host is
// deployed twice.
func TestRestartContinues(t *testing.T) {
	tg := targets(60)
	path := filepath.Join(t.TempDir(), "s.db")
	hosts := newInstant(tg, "0.4.1")
	h := start(t, path, tg, hosts, policy("pause"))
	v, err := h.eng.Start(context.Background(), waves.Request{Version: "0.5.0"})
	if err != nil {
		t.Fatal(err)
	}
	h.wait(t, v.ID, func(v waves.View) bool { return v.Waves[2].State == waves.WaveRunning })
	h.stop()
	h = start(t, path, tg, hosts, policy("pause"))
	defer h.stop()
	v = h.wait(t, v.ID, over)
	if v.State != waves.StateSucceeded {
		t.Fatalf("ended %s: %s", v.State, v.Reason)
	}
	for _, tgt := range tg {
		if hosts.deploys[tgt.Name] != 1 {
			t.Errorf("%s deployed %d times", tgt.Name, hosts.deploys[tgt.Name])
		}
	}
}

func TestViewSettled(t *testing.T) {
	hosts := func(states ...string) map[string]store.RolloutHost {
		m := map[string]store.RolloutHost{}
		for i, s := range states {
			m[fmt.Sprintf("h%d", i)] = store.RolloutHost{State: s}
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		state string
		hosts map[string]store.RolloutHost
		want  bool
	}{
		{"running", waves.StateRunning, hosts(waves.HostSucceeded, waves.HostPending), false},
		{"aborting", waves.StateAborting, hosts(waves.HostRolledBack), false},
		{"paused, a host still deploying", waves.StatePaused, hosts(waves.HostFailed, waves.HostRunning), false},
		{"paused, a host still rolling back", waves.StatePaused, hosts(waves.HostRollingBack), false},
		{"paused, nothing in flight", waves.StatePaused, hosts(waves.HostFailed, waves.HostPending), true},
		{"succeeded", waves.StateSucceeded, hosts(waves.HostSucceeded), true},
		{"aborted", waves.StateAborted, hosts(waves.HostRolledBack), true},
		{"failed", waves.StateFailed, hosts(waves.HostRollbackFailed), true},
	} {
		if got := (waves.View{State: tc.state, Hosts: tc.hosts}).Settled(); got != tc.want {
			t.Errorf("%s: Settled() = %v, want %v", tc.name, got, tc.want)
		}
	}
}
