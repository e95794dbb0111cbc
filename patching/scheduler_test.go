package patching_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchctl/patchctl/advisory"
	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/inventory"
	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/patching"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/window"
)

// clock is a test clock moved by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// engine keeps rollouts in memory; the test finishes their phases, as the fleet engine does
// when waves pass.
type engine struct {
	mu       sync.Mutex
	rollouts map[string]*patching.Rollout
	starts   []patching.StartRequest
	calls    []string
}

func newEngine() *engine { return &engine{rollouts: map[string]*patching.Rollout{}} }

func (e *engine) Start(_ context.Context, req patching.StartRequest) (patching.Rollout, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.starts = append(e.starts, req)
	r := &patching.Rollout{ID: fmt.Sprintf("r%d", len(e.starts)), Version: req.Version, State: patching.StateRunning, Hosts: 4}
	e.rollouts[r.ID] = r
	e.calls = append(e.calls, "start "+r.ID)
	return *r, nil
}

func (e *engine) get(id string) (*patching.Rollout, error) {
	r, ok := e.rollouts[id]
	if !ok {
		return nil, fmt.Errorf("no rollout %s", id)
	}
	return r, nil
}

// move changes a rollout if allowed says it may, as the engine's transitions do.
func (e *engine) move(id, call string, allowed func(r *patching.Rollout) bool, change func(r *patching.Rollout)) (patching.Rollout, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := e.get(id)
	if err != nil {
		return patching.Rollout{}, err
	}
	if !allowed(r) {
		return patching.Rollout{}, fmt.Errorf("%s: rollout %s is %s", call, id, r.State)
	}
	change(r)
	e.calls = append(e.calls, call)
	return *r, nil
}

func (e *engine) Pause(_ context.Context, id, reason string) (patching.Rollout, error) {
	return e.move(id, "pause "+id+": "+reason, func(r *patching.Rollout) bool { return r.State == patching.StateRunning },
		func(r *patching.Rollout) { r.State, r.Reason = patching.StatePaused, reason })
}

func (e *engine) Resume(_ context.Context, id string) (patching.Rollout, error) {
	return e.move(id, "resume "+id, func(r *patching.Rollout) bool { return r.State == patching.StatePaused && !r.AwaitingPromote },
		func(r *patching.Rollout) { r.State, r.Reason = patching.StateRunning, "" })
}

func (e *engine) Promote(_ context.Context, id string) (patching.Rollout, error) {
	return e.move(id, "promote "+id, func(r *patching.Rollout) bool { return r.State == patching.StatePaused && r.AwaitingPromote },
		func(r *patching.Rollout) { r.State, r.Reason, r.AwaitingPromote = patching.StateRunning, "", false })
}

func (e *engine) Get(_ context.Context, id string) (patching.Rollout, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := e.get(id)
	if err != nil {
		return patching.Rollout{}, err
	}
	return *r, nil
}

func (e *engine) Find(_ context.Context, version, _ string) (patching.Rollout, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.rollouts {
		if r.Version == version && !r.Finished() {
			return *r, true, nil
		}
	}
	return patching.Rollout{}, false, nil
}

// set changes a rollout as the fleet engine would (a wave passed, a host failed).
func (e *engine) set(id string, fn func(r *patching.Rollout)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fn(e.rollouts[id])
}

func (e *engine) log() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls)
}

var _ patching.Engine = (*engine)(nil)

const source = "twitter/twemproxy"

type rig struct {
	t     *testing.T
	st    *store.Store
	clock *clock
	eng   *engine
	hosts []inventory.Exposure
	cfg   *config.Config
	s     *patching.Scheduler
}

func newRig(t *testing.T, yml string) *rig {
	t.Helper()
	cfg, err := config.Parse("patchctl.yml", strings.NewReader(yml))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, clock: &clock{}, eng: newEngine(), cfg: cfg}
	r.st, err = store.Open(t.Context(), filepath.Join(t.TempDir(), "patchctl.db"), store.Options{Now: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.st.Close() })
	r.s = patching.New(patching.Options{Store: r.st, Engine: r.eng, Clock: r.clock, Config: func() *config.Config { return r.cfg },
		Hosts: func(context.Context) ([]inventory.Exposure, error) { return slices.Clone(r.hosts), nil }})
	return r
}

func (r *rig) release(v string, published time.Time, security bool) {
	r.t.Helper()
	if err := r.st.Update(r.t.Context(), func(tx *store.Tx) error {
		return tx.PutRelease(store.Release{Source: source, Tag: "v" + v, Version: v, PublishedAt: published, Security: security,
			Reasons: map[bool][]string{true: {"segfault"}}[security]})
	}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) fleet(version string, findings ...inventory.Finding) {
	r.hosts = nil
	for i, env := range []string{"staging", "staging", "production", "production"} {
		r.hosts = append(r.hosts, inventory.Exposure{Host: fmt.Sprintf("%s-%d", env, i), Environment: env, Version: version, Findings: findings})
	}
}

// at moves the clock and ticks.
func (r *rig) at(s string) {
	r.t.Helper()
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil {
		r.t.Fatal(err)
	}
	r.clock.set(ts)
	if err := r.s.Tick(r.t.Context()); err != nil {
		r.t.Fatalf("tick at %s: %v", s, err)
	}
}

func (r *rig) outbox() []notify.Message {
	r.t.Helper()
	items, err := r.st.Outbox(r.t.Context(), false)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []notify.Message
	for _, it := range items {
		m, err := notify.Render(it.Payload)
		if err != nil {
			r.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func (r *rig) expectCalls(want ...string) {
	r.t.Helper()
	if got := r.eng.log(); !slices.Equal(got, want) {
		r.t.Fatalf("engine calls = %q, want %q", got, want)
	}
}

func (r *rig) plan(name string, after string) patching.Decision {
	r.t.Helper()
	ts, _ := time.Parse(time.RFC3339, after)
	for _, w := range r.cfg.Windows() {
		if w.Name == name {
			o, ok := w.At(ts)
			if !ok {
				o, _ = w.Next(ts)
			}
			d, err := r.s.Plan(r.t.Context(), o)
			if err != nil {
				r.t.Fatal(err)
			}
			return d
		}
	}
	r.t.Fatalf("no window %s", name)
	return patching.Decision{}
}

const monthly = `patching:
  reminder: 24h
  policies:
    - name: monthly
      min_release_age: 72h
      security:
        min_severity: high
  windows:
    - name: staging
      recurrence: second tuesday at 02:00
      time_zone: Europe/Berlin
      duration: 4h
      cutoff: 1h
      kind: staging
    - name: production
      recurrence: second tuesday at 02:00
      offset_days: 2
      time_zone: Europe/Berlin
      duration: 4h
      cutoff: 1h
      kind: production
`

// TestAutomaticFlow walks one release through the monthly windows with a moving clock:
// too young, reminder, staging, window closing mid-rollout, resume, approval, production.
func TestAutomaticFlow(t *testing.T) {
	r := newRig(t, monthly)
	r.release("0.4.1", time.Date(2015, 6, 22, 0, 0, 0, 0, time.UTC), false)
	r.fleet("0.4.1")
	// 0.5.0 appears two days before January's staging window: too young for it.
	r.release("0.5.0", time.Date(2026, 1, 11, 0, 0, 0, 0, time.UTC), false)
	if d := r.plan("staging", "2026-01-12T00:00:00Z"); d.Action != patching.ActionWait || !strings.Contains(d.Why, "too young") || !d.Until.Equal(time.Date(2026, 1, 14, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("plan for January = %+v", d)
	}
	r.at("2026-01-13T01:30:00Z") // staging window of January open
	r.expectCalls()
	if d := r.plan("production", "2026-01-13T01:30:00Z"); d.Action != patching.ActionNone || !strings.Contains(d.Why, "has not passed staging") {
		t.Fatalf("production plan before staging = %+v", d)
	}

	// A day before February's window: the reminder, once.
	r.at("2026-02-09T02:00:00Z")
	r.at("2026-02-09T03:00:00Z")
	if ms := r.outbox(); len(ms) != 1 || !strings.Contains(ms[0].Title, "staging") || !strings.Contains(ms[0].Title, "start 0.5.0") {
		t.Fatalf("reminder: %+v", ms)
	}
	// The window opens (02:00 Berlin = 01:00 UTC): one start, even when ticked twice.
	r.at("2026-02-10T01:00:00Z")
	r.at("2026-02-10T01:00:30Z")
	r.expectCalls("start r1")
	if got := r.eng.starts[0]; got.Version != "0.5.0" {
		t.Fatalf("start request %+v", got)
	}
	// 0.5.1 appears meanwhile: the running rollout keeps its candidate.
	r.release("0.5.1", time.Date(2026, 2, 10, 1, 10, 0, 0, time.UTC), false)
	if d := r.plan("staging", "2026-02-10T01:20:00Z"); d.Candidate != "0.5.0" || d.Rollout != "r1" || d.Action != patching.ActionContinue {
		t.Fatalf("plan during the rollout = %+v", d)
	}
	// The cutoff (05:00 Berlin) passes with staging unfinished: paused, "window closed".
	r.at("2026-02-10T03:59:00Z")
	r.expectCalls("start r1")
	r.at("2026-02-10T04:00:00Z")
	r.expectCalls("start r1", "pause r1: window closed")
	// The end of the window: its summary.
	r.at("2026-02-10T05:00:00Z")
	ms := r.outbox()
	last := ms[len(ms)-1]
	if !strings.Contains(last.Title, "staging (staging) closed") || !strings.Contains(last.Summary, "r1 of 0.5.0") || !strings.Contains(last.Summary, "window closed") {
		t.Fatalf("summary = %+v", last)
	}
	// The production window two days later does nothing for a staging-phase rollout.
	r.at("2026-02-12T01:30:00Z")
	r.expectCalls("start r1", "pause r1: window closed")
	// March's staging window resumes it; staging then passes (smoke + soak).
	r.at("2026-03-10T01:00:00Z")
	r.expectCalls("start r1", "pause r1: window closed", "resume r1")
	r.eng.set("r1", func(x *patching.Rollout) {
		x.State, x.StagingDone, x.AwaitingPromote = patching.StatePaused, true, true
	})
	// March's production window: approval required and not given.
	r.at("2026-03-12T01:00:00Z")
	r.expectCalls("start r1", "pause r1: window closed", "resume r1")
	if d := r.plan("production", "2026-03-12T01:00:00Z"); d.Action != patching.ActionWait || !strings.Contains(d.Why, "patchctl rollout approve r1") {
		t.Fatalf("plan before approval = %+v", d)
	}
	if _, err := r.s.Approve(store.WithActor(t.Context(), "uid 1000 (alice)"), "r1"); err != nil {
		t.Fatal(err)
	}
	// Approved inside the window, before its cutoff: the next tick promotes.
	r.at("2026-03-12T02:00:00Z")
	r.expectCalls("start r1", "pause r1: window closed", "resume r1", "promote r1")
	// Production is still running at the cutoff: paused, then resumed (not promoted again)
	// by April's production window, where it finishes.
	r.at("2026-03-12T04:00:00Z")
	r.expectCalls("start r1", "pause r1: window closed", "resume r1", "promote r1", "pause r1: window closed")
	if d := r.plan("production", "2026-04-15T00:00:00Z"); d.Action != patching.ActionResume {
		t.Fatalf("plan for April = %+v", d)
	}
	r.at("2026-04-16T00:00:00Z")
	r.expectCalls("start r1", "pause r1: window closed", "resume r1", "promote r1", "pause r1: window closed", "resume r1")
	r.eng.set("r1", func(x *patching.Rollout) { x.State, x.Done = patching.StateSucceeded, 4 })
	r.fleet("0.5.0")
	r.at("2026-04-16T00:10:00Z")
	// Done: the next candidate is 0.5.1, and the next window starts it (it is old enough).
	if d := r.plan("staging", "2026-04-17T00:00:00Z"); d.Candidate != "0.5.1" || d.Action != patching.ActionStart {
		t.Fatalf("plan after success = %+v", d)
	}
	evs := events(t, r.st)
	for _, k := range []string{"window.reminder", "window.start", "patching.started", "patching.paused", "window.end", "patching.resumed", "patching.approved", "patching.promoted", "patching.done"} {
		if !slices.Contains(evs, k) {
			t.Errorf("no %s event in %v", k, evs)
		}
	}
}

func events(t *testing.T, st *store.Store) []string {
	t.Helper()
	var kinds []string
	if err := st.View(t.Context(), func(tx *store.Tx) error {
		evs, err := tx.Events(store.EventFilter{})
		for _, e := range evs {
			kinds = append(kinds, e.Kind)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return kinds
}

// TestFailedRolloutMarksBad: a failed candidate is not proposed again until unmarked or a
// newer release appears.
func TestFailedRolloutMarksBad(t *testing.T) {
	r := newRig(t, monthly)
	r.release("0.5.0", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), false)
	r.fleet("0.4.1")
	r.at("2026-01-13T01:00:00Z")
	r.expectCalls("start r1")
	r.eng.set("r1", func(x *patching.Rollout) { x.State, x.Reason = patching.StateAborted, "aborted by request" })
	r.at("2026-01-13T01:10:00Z")
	if d := r.plan("staging", "2026-01-13T01:10:00Z"); d.Action != patching.ActionNone || !strings.Contains(d.Why, "0.5.0 is marked bad (rollout r1 aborted: aborted by request)") {
		t.Fatalf("plan after abort = %+v", d)
	}
	r.at("2026-02-10T01:00:00Z")
	r.expectCalls("start r1")
	ms := r.outbox()
	if !slices.ContainsFunc(ms, func(m notify.Message) bool { return strings.Contains(m.Title, "0.5.0 marked bad") }) {
		t.Errorf("no bad-version message in %+v", ms)
	}
	if err := r.s.Unmark(t.Context(), "v0.5.0"); err != nil {
		t.Fatal(err)
	}
	if err := r.s.Unmark(t.Context(), "0.5.0"); err == nil {
		t.Error("unmarking twice succeeded")
	}
	r.at("2026-02-10T01:01:00Z")
	r.expectCalls("start r1", "start r2")
	r.eng.set("r2", func(x *patching.Rollout) { x.State = patching.StateFailed })
	r.at("2026-02-10T01:02:00Z")
	// A newer release ends the wait without an unmark.
	r.release("0.5.1", time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), false)
	r.at("2026-02-10T01:03:00Z")
	r.expectCalls("start r1", "start r2", "start r3")
	if r.eng.starts[2].Version != "0.5.1" {
		t.Errorf("third start = %+v", r.eng.starts[2])
	}
}

const withSecurity = `patching:
  reminder: 0s
  policies:
    - name: monthly
      min_release_age: 168h
      security:
        min_severity: high
  windows:
    - name: staging
      recurrence: second tuesday at 02:00
      time_zone: Europe/Berlin
      duration: 4h
      kind: staging
    - name: nightly
      recurrence: "0 1 * * *"
      time_zone: America/New_York
      duration: 2h
      cutoff: 30m
      kind: security
  blackouts:
    - from: "2026-03-20"
      to: "2026-03-22"
      reason: freeze
`

// TestSecurityFastTrack: a release fixing a high advisory that affects the fleet skips the
// minimum age and runs in the nightly security window, staging first; Slack says why.
func TestSecurityFastTrack(t *testing.T) {
	r := newRig(t, withSecurity)
	r.fleet("0.4.1", inventory.Finding{ID: "CVE-2026-0001", Severity: advisory.SeverityHigh, FixedIn: "0.5.0"})
	r.release("0.5.0", time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC), false)
	// The next nightly window (01:00 New York = 06:00 UTC) starts it, a day after release.
	r.at("2026-03-03T06:00:00Z")
	r.expectCalls("start r1")
	ms := r.outbox()
	i := slices.IndexFunc(ms, func(m notify.Message) bool {
		return strings.Contains(m.Title, "rollout r1 of nutcracker 0.5.0 started")
	})
	if i < 0 {
		t.Fatalf("no start message in %+v", ms)
	}
	text := notify.Format(ms[i])
	if !strings.Contains(text, "Fast-tracked because") || !strings.Contains(text, "CVE-2026-0001 (high, 4 hosts)") {
		t.Errorf("start message does not say why:\n%s", text)
	}
	// Staging passes; production also runs in the nightly window (no approval given:
	// the default policy requires one).
	r.eng.set("r1", func(x *patching.Rollout) {
		x.State, x.StagingDone, x.AwaitingPromote = patching.StatePaused, true, true
	})
	r.at("2026-03-04T06:00:00Z")
	r.expectCalls("start r1")
	if _, err := r.s.Approve(t.Context(), "r1"); err != nil {
		t.Fatal(err)
	}
	r.at("2026-03-04T06:05:00Z")
	r.expectCalls("start r1", "promote r1")

	// A medium advisory does not fast-track: the same release waits for its age.
	r2 := newRig(t, withSecurity)
	r2.fleet("0.4.1", inventory.Finding{ID: "CVE-2026-0002", Severity: advisory.SeverityMedium, FixedIn: "0.5.0"})
	r2.release("0.5.0", time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC), false)
	r2.at("2026-03-03T06:00:00Z")
	r2.expectCalls()
	if d := r2.plan("nightly", "2026-03-03T06:00:00Z"); !strings.Contains(d.Why, "security windows are for the fast track") {
		t.Errorf("nightly plan without fast track = %+v", d)
	}
}

// TestNothingStartsInABlackout: a window opening inside a freeze does nothing and says why.
func TestNothingStartsInABlackout(t *testing.T) {
	r := newRig(t, withSecurity)
	r.fleet("0.4.1", inventory.Finding{ID: "CVE-2026-0001", Severity: advisory.SeverityCritical, FixedIn: "0.5.0"})
	r.release("0.5.0", time.Date(2026, 3, 19, 12, 0, 0, 0, time.UTC), false)
	r.at("2026-03-20T06:00:00Z")
	r.at("2026-03-22T06:00:00Z")
	r.expectCalls()
	if d := r.plan("nightly", "2026-03-21T06:00:00Z"); d.Action != patching.ActionNone || !strings.Contains(d.Why, "blackout 2026-03-20..2026-03-22 (freeze)") {
		t.Errorf("plan in the freeze = %+v", d)
	}
	r.at("2026-03-23T05:00:00Z") // 01:00 EDT: the first night after the freeze
	r.expectCalls("start r1")
}

// TestStartInterruptedByACrash: the intent to start is recorded first; a scheduler that
// finds it adopts the rollout the engine has instead of starting another.
func TestStartInterruptedByACrash(t *testing.T) {
	r := newRig(t, monthly)
	r.release("0.5.0", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), false)
	r.fleet("0.4.1")
	// As if the daemon died right after the engine started r1.
	if _, err := r.eng.Start(t.Context(), patching.StartRequest{Version: "0.5.0"}); err != nil {
		t.Fatal(err)
	}
	if err := r.st.Update(t.Context(), func(tx *store.Tx) error {
		return tx.PutPatchState(store.PatchState{Policy: "monthly", Version: "0.5.0", Starting: true})
	}); err != nil {
		t.Fatal(err)
	}
	r.at("2026-01-13T01:00:00Z")
	r.expectCalls("start r1")
	if d := r.plan("staging", "2026-01-13T01:00:00Z"); d.Rollout != "r1" || d.Action != patching.ActionContinue {
		t.Errorf("plan = %+v", d)
	}
}

func TestApproveUnknownRollout(t *testing.T) {
	r := newRig(t, monthly)
	if _, err := r.s.Approve(t.Context(), "nope"); err == nil || !strings.Contains(err.Error(), "not a rollout of the patch scheduler") {
		t.Errorf("approve unknown = %v", err)
	}
}

// TestDecisionJSON keeps the decision's JSON keys snake_case and hosts a list.
func TestDecisionJSON(t *testing.T) {
	b, err := json.Marshal(patching.Decision{Action: patching.ActionNone, Hosts: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); !strings.Contains(got, `"hosts":[]`) || strings.Contains(got, "until") {
		t.Errorf("decision JSON = %s", got)
	}
	_ = window.Staging
}
