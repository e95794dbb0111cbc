package app_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/app"
	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/patching"
	"github.com/patchctl/patchctl/waves"
)

// releaseDir is a local release source laid out like GitHub's API.
type releaseDir struct {
	t    *testing.T
	root string
	rels []map[string]any
}

func newReleaseDir(t *testing.T) *releaseDir {
	d := &releaseDir{t: t, root: t.TempDir()}
	if err := os.MkdirAll(filepath.Join(d.root, "repos", "twitter", "twemproxy"), 0o755); err != nil {
		t.Fatal(err)
	}
	d.publish("0.4.1", time.Date(2015, 6, 22, 0, 0, 0, 0, time.UTC), "twemproxy 0.4.1")
	return d
}

func (d *releaseDir) publish(v string, at time.Time, notes string) {
	d.t.Helper()
	d.rels = append(d.rels, map[string]any{"tag_name": v, "name": v, "published_at": at.Format(time.RFC3339), "prerelease": false,
		"body": notes, "html_url": "https://github.com/twitter/twemproxy/releases/tag/" + v})
	data, err := json.Marshal(d.rels)
	if err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.root, "repos", "twitter", "twemproxy", "releases.json"), data, 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// patchRig is a daemon with a test clock, a local release source and real hosts on 0.4.1.
type patchRig struct {
	*rig
	clock *patching.JumpClock
	rels  *releaseDir
}

// patchPolicy is the rollout and patching configuration of these tests: one staging host,
// then production one host at a time; monthly windows in UTC, and a nightly security window.
const patchPolicy = `rollouts:
  default_policy: fleet
  soak_interval: 200ms
  policies:
    - name: fleet
      waves:
        - name: staging
          environments: [staging]
          soak: 2s
        - name: production
          environments: [production]
          max_parallel: 1
          soak: 1s
tracker:
  sources:
    - repo: twitter/twemproxy
      dir: %s
      tags: false
      advisories: false
patching:
  reminder: 24h
  policies:
    - name: monthly
      min_release_age: 72h
      security:
        min_severity: %s
  windows:
    - name: staging
      recurrence: second tuesday at 02:00
      time_zone: UTC
      duration: 2h
      cutoff: 30m
      kind: staging
    - name: production
      recurrence: second tuesday at 02:00
      offset_days: 2
      time_zone: UTC
      duration: 2h
      cutoff: 30m
      kind: production
    - name: nightly
      recurrence: "0 1 * * *"
      time_zone: UTC
      duration: 1h
      kind: security
`

func newPatchRig(t *testing.T, start time.Time, minSeverity string, hosts ...testenv.FleetHost) *patchRig {
	t.Helper()
	clock := &patching.JumpClock{}
	clock.Set(start)
	rels := newReleaseDir(t)
	r := &patchRig{rig: newRigWith(t, fmt.Sprintf(patchPolicy, rels.root, minSeverity), app.Options{Now: clock.Now}, hosts...),
		clock: clock, rels: rels}
	r.poll()
	return r
}

// poll reads the release source and every host now.
func (r *patchRig) poll() {
	r.t.Helper()
	if err := r.call("poll", nil, nil); err != nil {
		r.t.Fatal(err)
	}
	if err := r.call("inventory.poll", nil, nil); err != nil {
		r.t.Fatal(err)
	}
}

// at moves the clock and makes the scheduler look at once.
func (r *patchRig) at(s string) {
	r.t.Helper()
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil {
		r.t.Fatal(err)
	}
	r.clock.Set(ts)
	r.tick()
}

func (r *patchRig) tick() {
	r.t.Helper()
	if err := r.call("patching.tick", nil, nil); err != nil {
		r.t.Fatalf("tick: %v", err)
	}
}

func (r *patchRig) windows() app.WindowsReport {
	r.t.Helper()
	var rep app.WindowsReport
	if err := r.call("windows", app.WindowsArgs{Next: 100}, &rep); err != nil {
		r.t.Fatal(err)
	}
	return rep
}

// plan is what the named window's next (or open) opening would do.
func (r *patchRig) plan(name string) patching.Decision {
	r.t.Helper()
	for _, e := range r.windows().Windows {
		if e.Name == name {
			return e.Plan
		}
	}
	r.t.Fatalf("no coming opening of %s", name)
	return patching.Decision{}
}

func (r *patchRig) rollouts() []waves.View {
	r.t.Helper()
	var list app.RolloutList
	if err := r.call("rollout.list", nil, &list); err != nil {
		r.t.Fatal(err)
	}
	return list.Rollouts
}

// only is the one rollout the scheduler started.
func (r *patchRig) only() string {
	r.t.Helper()
	rs := r.rollouts()
	if len(rs) != 1 {
		r.t.Fatalf("%d rollouts, want exactly 1: %+v", len(rs), rs)
	}
	return rs[0].ID
}

func (r *patchRig) outbox() string {
	r.t.Helper()
	var all []string
	items, err := r.app.Store().Outbox(ctxT(r.t, time.Minute), false)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, it := range items {
		all = append(all, string(it.Payload))
	}
	return strings.Join(all, "\n")
}

func stagingPassed(v waves.View) bool {
	return v.State == waves.StatePaused && v.AwaitingPromote && v.Waves[0].State == waves.WavePassed
}

// TestPatchWindowsEndToEnd: a release is published; before its minimum age nothing
// happens; the staging window opens and staging is patched and soaked; production waits for
// approval, is approved, and is patched in the production window; a production window that
// closes mid-rollout pauses it and the next one finishes it. Real nutcracker 0.4.1 → 0.5.0
// on local hosts, a local release source, and a clock the test moves.
func TestPatchWindowsEndToEnd(t *testing.T) {
	r := newPatchRig(t, time.Date(2026, 2, 9, 12, 0, 0, 0, time.UTC), "critical",
		testenv.FleetHost{Name: "stage-1", Environment: "staging"},
		testenv.FleetHost{Name: "prod-1", Environment: "production"},
		testenv.FleetHost{Name: "prod-2", Environment: "production"})
	stage, prod1, prod2 := r.hosts[0], r.hosts[1], r.hosts[2]

	// 0.5.0 is published the day before February's staging window: too young for it.
	r.rels.publish("0.5.0", time.Date(2026, 2, 9, 12, 0, 0, 0, time.UTC), "twemproxy 0.5.0")
	r.poll()
	if d := r.plan("staging"); d.Action != patching.ActionWait || !strings.Contains(d.Why, "too young") || d.Candidate != "0.5.0" {
		t.Fatalf("February's staging plan = %+v", d)
	}
	r.at("2026-02-10T02:05:00Z")
	if rs := r.rollouts(); len(rs) != 0 {
		t.Fatalf("a rollout started before the release's minimum age: %+v", rs)
	}

	// The day before March's staging window: a reminder says what it will do.
	r.at("2026-03-09T03:00:00Z")
	if box := r.outbox(); !strings.Contains(box, "patch window staging (staging) opens 2026-03-10 02:00 UTC: start 0.5.0") {
		t.Errorf("no reminder before March's window in the outbox:\n%s", box)
	}
	// March's staging window: the scheduler starts the staging waves; staging passes.
	r.at("2026-03-10T02:00:00Z")
	id := r.only()
	r.tick() // ticking again inside the window starts nothing more
	r.only()
	r.waitFor(id, "staging passed", stagingPassed)
	r.expect("0.5.0", stage)
	r.expect("0.4.1", prod1, prod2)
	if d := r.plan("production"); d.Action != patching.ActionWait || !strings.Contains(d.Why, "patchctl rollout approve "+id) {
		t.Fatalf("production plan before approval = %+v", d)
	}
	// March's production window without approval: nothing moves.
	r.at("2026-03-12T02:00:00Z")
	if v := r.status(id); !stagingPassed(v) {
		t.Fatalf("production started without approval: %s %s", v.State, v.Reason)
	}
	if err := r.call("rollout.approve", app.RolloutIDArgs{ID: id}, nil); err != nil {
		t.Fatal(err)
	}
	// Approved a minute before the cutoff: production starts, then the cutoff passes with
	// a host still to go and the rollout pauses "window closed".
	r.at("2026-03-12T03:29:00Z")
	r.clock.Set(time.Date(2026, 3, 12, 3, 30, 0, 0, time.UTC))
	r.tick()
	v := r.waitFor(id, "paused by the window", func(v waves.View) bool {
		return v.State == waves.StatePaused && v.Reason == patching.ReasonWindowClosed && len(activeHosts(v)) == 0
	})
	if done := countState(v, waves.HostSucceeded); done == 3 {
		t.Fatalf("every host finished before the window closed: nothing left to test\n%s", describeView(v))
	}
	// April's production window (the 16th) resumes and finishes it.
	r.at("2026-04-16T02:00:00Z")
	r.waitFor(id, "succeeded", state(waves.StateSucceeded))
	r.expect("0.5.0")
	r.poll()
	r.tick()
	if d := r.plan("staging"); d.Action != patching.ActionNone || !strings.Contains(d.Why, "all hosts run 0.5.0") {
		t.Errorf("plan after the rollout = %+v", d)
	}
	box := r.outbox()
	for _, want := range []string{"window.start", "patching.started", "window.end", "window closed"} {
		if !strings.Contains(box, want) {
			t.Errorf("no %q in the outbox", want)
		}
	}
}

// TestSecurityFastTrackEndToEnd: 0.5.0 fixes a high advisory (the curated feed's
// PATCHCTL-2021-0001) that affects hosts on 0.4.1: it skips the minimum age and runs in the
// nightly security window, staging first, and Slack says why.
func TestSecurityFastTrackEndToEnd(t *testing.T) {
	r := newPatchRig(t, time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC), "high",
		testenv.FleetHost{Name: "stage-1", Environment: "staging"},
		testenv.FleetHost{Name: "prod-1", Environment: "production"})
	r.rels.publish("0.5.0", time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC), "twemproxy 0.5.0")
	r.poll()
	if d := r.plan("nightly"); d.Action != patching.ActionStart || !strings.Contains(d.FastTrack, "PATCHCTL-2021-0001 (high") {
		t.Fatalf("nightly plan = %+v", d)
	}
	r.at("2026-05-05T01:00:00Z") // 13 hours after the release
	id := r.only()
	r.waitFor(id, "staging passed", stagingPassed)
	r.expect("0.5.0", r.hosts[0])
	r.expect("0.4.1", r.hosts[1])
	if box := r.outbox(); !strings.Contains(box, "Fast-tracked because") || !strings.Contains(box, "PATCHCTL-2021-0001") {
		t.Errorf("the start message does not say why it was fast-tracked:\n%s", box)
	}
}

func activeHosts(v waves.View) []string {
	var out []string
	for name, h := range v.Hosts {
		if h.State == waves.HostRunning {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func countState(v waves.View, s string) int {
	n := 0
	for _, h := range v.Hosts {
		if h.State == s {
			n++
		}
	}
	return n
}
