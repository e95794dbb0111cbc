package patching

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/inventory"
	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/window"
)

// Actions a window takes for its policy.
const (
	ActionStart    = "start"    // start a rollout of the candidate (staging waves)
	ActionResume   = "resume"   // resume a rollout paused when its last window closed
	ActionPromote  = "promote"  // let a rollout whose staging passed run its production waves
	ActionContinue = "continue" // the rollout runs in this window
	ActionWait     = "wait"     // work exists but must wait (approval, release age, a pause)
	ActionNone     = "none"     // nothing to do
)

// Decision is what a window does, or would do, for its policy, and why.
type Decision struct {
	Action    string    `json:"action"`
	Policy    string    `json:"policy"`
	Candidate string    `json:"candidate,omitempty"`
	FastTrack string    `json:"fast_track,omitempty"`
	Hosts     []string  `json:"hosts"` // hosts behind the candidate, in the window's scope
	Rollout   string    `json:"rollout,omitempty"`
	Why       string    `json:"why"`
	Until     time.Time `json:"until,omitzero"` // when the reason to wait ends, if known
}

// Work reports whether the window acts.
func (d Decision) Work() bool {
	switch d.Action {
	case ActionStart, ActionResume, ActionPromote, ActionContinue:
		return true
	}
	return false
}

// Options build a Scheduler.
type Options struct {
	Store  *store.Store
	Engine Engine
	Clock  Clock
	// Config is the current configuration (it changes on reload).
	Config func() *config.Config
	// Hosts is the fleet as the inventory last saw it.
	Hosts  func(ctx context.Context) ([]inventory.Exposure, error)
	Logger *slog.Logger
}

// Scheduler drives rollouts through patch windows.
type Scheduler struct {
	o  Options
	mu sync.Mutex // one tick (or approval) at a time
}

// New returns a scheduler; Tick does the work.
func New(o Options) *Scheduler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	return &Scheduler{o: o}
}

// ErrNotScheduled means a rollout id is not one the scheduler drives.
var ErrNotScheduled = errors.New("not a rollout of the patch scheduler")

// facts are what one policy's decisions are made from, read once per tick.
type facts struct {
	pol     config.PatchPolicy
	st      store.PatchState
	rollout *Rollout // the unfinished rollout the scheduler drives, nil when none
	cand    Candidate
	noCand  string // why there is no candidate
	hosts   []inventory.Exposure
}

func (s *Scheduler) gather(ctx context.Context, pol config.PatchPolicy) (facts, error) {
	f := facts{pol: pol}
	hosts, err := s.o.Hosts(ctx)
	if err != nil {
		return f, fmt.Errorf("read fleet: %w", err)
	}
	f.hosts = hosts
	var rels []store.Release
	var bad []store.BadVersion
	if err := s.o.Store.View(ctx, func(tx *store.Tx) (err error) {
		if f.st, err = tx.PatchState(pol.Name); err != nil {
			return err
		}
		if rels, err = tx.Releases(pol.Source); err != nil {
			return err
		}
		bad, err = tx.BadVersions(pol.Source)
		return err
	}); err != nil {
		return f, err
	}
	f.cand, f.noCand = pickCandidate(pol, rels, bad, hosts)
	if f.st.Rollout != "" {
		r, err := s.o.Engine.Get(ctx, f.st.Rollout)
		if err != nil {
			return f, fmt.Errorf("rollout %s: %w", f.st.Rollout, err)
		}
		f.rollout = &r
	}
	return f, nil
}

// kinds are the windows a rollout phase may run in; a fast-tracked candidate may also use
// security windows.
func kinds(production, fast bool) []window.Kind {
	k := []window.Kind{window.Staging}
	if production {
		k[0] = window.Production
	}
	if fast {
		k = append(k, window.Security)
	}
	return k
}

// decide says what occurrence o does at time at.
func decide(f facts, o window.Occurrence, at time.Time) Decision {
	d := Decision{Policy: f.pol.Name, Action: ActionNone, Hosts: []string{}}
	if o.Blocked() {
		d.Why = "blackout " + o.Blackout.String()
		return d
	}
	kind := o.Window.Kind
	if r := f.rollout; r != nil {
		d.Candidate, d.Rollout, d.FastTrack = r.Version, r.ID, f.st.FastTrack
		d.Hosts = behind(f.hosts, r.Version, o.Window.Environments)
		phase := "staging"
		if r.StagingDone {
			phase = "production"
		}
		if !slices.Contains(kinds(r.StagingDone, f.st.FastTrack != ""), kind) {
			d.Why = fmt.Sprintf("rollout %s of %s is in its %s phase; this is a %s window", r.ID, r.Version, phase, kind)
			return d
		}
		switch {
		case r.StagingDone && r.AwaitingPromote && r.State == StatePaused && f.pol.NeedsApproval() && !f.st.Approved:
			d.Action = ActionWait
			d.Why = fmt.Sprintf("staging passed; waiting for approval: patchctl rollout approve %s", r.ID)
		case r.StagingDone && r.AwaitingPromote && r.State == StatePaused && r.Reason != ReasonWindowClosed:
			d.Action, d.Why = ActionPromote, fmt.Sprintf("staging passed; production waves of %s", r.Version)
		case r.State == StatePaused && r.Reason == ReasonWindowClosed:
			d.Action, d.Why = ActionResume, fmt.Sprintf("resume rollout %s (%s phase), paused when its last window closed", r.ID, phase)
		case r.State == StatePaused:
			d.Action, d.Why = ActionWait, fmt.Sprintf("rollout %s is paused: %s (resume or abort it)", r.ID, r.Reason)
		case r.State == StateRunning:
			d.Action, d.Why = ActionContinue, fmt.Sprintf("rollout %s of %s runs its %s waves", r.ID, r.Version, phase)
		default:
			d.Action, d.Why = ActionWait, fmt.Sprintf("rollout %s is %s", r.ID, r.State)
		}
		return d
	}
	if f.noCand != "" {
		d.Why = "no candidate: " + f.noCand
		return d
	}
	c := f.cand
	d.Candidate, d.FastTrack = c.Version, c.FastTrack
	d.Hosts = behind(f.hosts, c.Version, o.Window.Environments)
	switch {
	case len(d.Hosts) == 0:
		d.Why = fmt.Sprintf("all hosts run %s or newer", c.Version)
		return d
	case kind == window.Production:
		d.Why = fmt.Sprintf("%s has not passed staging yet: it starts in the next staging window", c.Version)
		return d
	case kind == window.Security && c.FastTrack == "":
		d.Why = fmt.Sprintf("%s is not a security fix at the policy's threshold; security windows are for the fast track", c.Version)
		return d
	case at.Before(c.ReadyAt):
		d.Action, d.Until = ActionWait, c.ReadyAt
		d.Why = fmt.Sprintf("release %s too young: a candidate from %s (min_release_age %s)", c.Version, c.ReadyAt.UTC().Format(time.RFC3339), f.pol.MinReleaseAge)
		return d
	}
	d.Action = ActionStart
	d.Why = fmt.Sprintf("candidate %s, %d hosts behind", c.Version, len(d.Hosts))
	if c.FastTrack != "" {
		d.Why += "; fast track: " + c.FastTrack
	}
	return d
}

// windowsOf are the windows serving a policy.
func windowsOf(cfg *config.Config, policy string) []*window.Window {
	var out []*window.Window
	for _, w := range cfg.Windows() {
		if w.Policy == policy {
			out = append(out, w)
		}
	}
	return out
}

// Plan says what an occurrence of a window would do: now if it is open, else at its opening.
func (s *Scheduler) Plan(ctx context.Context, o window.Occurrence) (Decision, error) {
	cfg := s.o.Config()
	pol, ok := cfg.Policy(o.Window.Policy)
	if !ok {
		return Decision{}, fmt.Errorf("window %s: no policy %q", o.Window.Name, o.Window.Policy)
	}
	f, err := s.gather(ctx, pol)
	if err != nil {
		return Decision{}, err
	}
	at := s.o.Clock.Now()
	if at.Before(o.Open) {
		at = o.Open
	}
	return decide(f, o, at), nil
}

// Tick looks at every policy and does what its windows call for now. It is idempotent:
// calling it again at the same instant, or after a restart, does nothing twice.
func (s *Scheduler) Tick(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.o.Config()
	var errs []error
	for _, pol := range cfg.Patching.Policies {
		if ws := windowsOf(cfg, pol.Name); len(ws) > 0 {
			if err := s.tick(ctx, cfg, pol, ws); err != nil {
				errs = append(errs, fmt.Errorf("policy %s: %w", pol.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (s *Scheduler) tick(ctx context.Context, cfg *config.Config, pol config.PatchPolicy, ws []*window.Window) error {
	now := s.o.Clock.Now()
	if err := s.adopt(ctx, pol); err != nil {
		return err
	}
	f, err := s.gather(ctx, pol)
	if err != nil {
		return err
	}
	if f.rollout != nil && f.rollout.Finished() {
		if err := s.finish(ctx, f); err != nil {
			return err
		}
		if f, err = s.gather(ctx, pol); err != nil {
			return err
		}
	}
	// The open occurrence (before its cutoff) that has work, if any.
	var act *window.Occurrence
	var d Decision
	for _, w := range ws {
		o, ok := w.At(now)
		if !ok || !o.CanStart(now) {
			continue
		}
		if dd := decide(f, o, now); dd.Work() {
			act, d = &o, dd
			break
		}
	}
	if f.rollout != nil && f.rollout.State == StateRunning && act == nil {
		if err := s.pause(ctx, f); err != nil {
			return err
		}
	}
	if act != nil {
		if err := s.windowStarted(ctx, *act, d); err != nil {
			return err
		}
		if err := s.act(ctx, f, *act, d); err != nil {
			return err
		}
	}
	if err := s.windowsEnded(ctx, pol, now); err != nil {
		return err
	}
	return s.remind(ctx, cfg, f, ws, now)
}

// adopt resolves a start interrupted by a crash: the rollout exists (take it over) or not
// (forget the intent; the next tick decides again).
func (s *Scheduler) adopt(ctx context.Context, pol config.PatchPolicy) error {
	var st store.PatchState
	if err := s.o.Store.View(ctx, func(tx *store.Tx) (err error) {
		st, err = tx.PatchState(pol.Name)
		return err
	}); err != nil || !st.Starting {
		return err
	}
	r, ok, err := s.o.Engine.Find(ctx, st.Version, pol.RolloutPolicy)
	if err != nil {
		return err
	}
	return s.update(ctx, pol.Name, func(_ *store.Tx, st *store.PatchState) error {
		st.Starting = false
		if ok {
			st.Rollout = r.ID
		} else {
			st.Version, st.FastTrack = "", ""
		}
		return nil
	})
}

func (s *Scheduler) act(ctx context.Context, f facts, o window.Occurrence, d Decision) error {
	switch d.Action {
	case ActionStart:
		return s.start(ctx, f, o, d)
	case ActionResume:
		if _, err := s.o.Engine.Resume(ctx, f.rollout.ID); err != nil {
			return fmt.Errorf("resume %s: %w", f.rollout.ID, err)
		}
		return s.note(ctx, o, "patching.resumed", f.rollout.ID, fmt.Sprintf("resumed rollout %s in window %s", f.rollout.ID, o.Window.Name))
	case ActionPromote:
		if _, err := s.o.Engine.Promote(ctx, f.rollout.ID); err != nil {
			return fmt.Errorf("promote %s: %w", f.rollout.ID, err)
		}
		return s.note(ctx, o, "patching.promoted", f.rollout.ID, fmt.Sprintf("production waves of %s started in window %s", f.rollout.ID, o.Window.Name))
	}
	return nil
}

func (s *Scheduler) start(ctx context.Context, f facts, o window.Occurrence, d Decision) error {
	if err := s.update(ctx, f.pol.Name, func(tx *store.Tx, st *store.PatchState) error {
		st.Version, st.Starting, st.FastTrack, st.Approved, st.ApprovedBy, st.Since = d.Candidate, true, d.FastTrack, false, "", tx.Now()
		return nil
	}); err != nil {
		return err
	}
	r, err := s.o.Engine.Start(ctx, StartRequest{Version: d.Candidate, RolloutPolicy: f.pol.RolloutPolicy,
		StagingWaves: f.pol.StagingWaves, Reason: d.Why})
	if err != nil {
		// Nothing started: forget the intent; the next tick decides again.
		return errors.Join(fmt.Errorf("start rollout of %s: %w", d.Candidate, err), s.update(ctx, f.pol.Name, func(_ *store.Tx, st *store.PatchState) error {
			st.Starting, st.Version, st.FastTrack = false, "", ""
			return nil
		}))
	}
	m := notify.Message{Kind: notify.KindWindow, Severity: notify.SeverityInfo, Version: d.Candidate,
		Title:   fmt.Sprintf("patch window %s: rollout %s of nutcracker %s started (staging)", o.Window.Name, r.ID, d.Candidate),
		Summary: fmt.Sprintf("%d hosts run an older version: %s.", len(d.Hosts), hostList(d.Hosts)),
		Fields: []notify.Field{{Key: "Rollout", Value: r.ID}, {Key: "Policy", Value: f.pol.Name},
			{Key: "Window", Value: windowSpan(o)}}}
	if d.FastTrack != "" {
		m.Security, m.Severity = true, notify.SeverityWarning
		m.Fields = append(m.Fields, notify.Field{Key: "Fast-tracked because", Value: d.FastTrack})
	}
	return s.update(ctx, f.pol.Name, func(tx *store.Tx, st *store.PatchState) error {
		st.Starting, st.Rollout = false, r.ID
		return s.record(tx, o, "patching.started", r.ID, m.Title, notify.OutboxPatchStarted, "patching.started:"+r.ID, &m)
	})
}

// update changes a policy's state in one transaction, from its stored value.
func (s *Scheduler) update(ctx context.Context, policy string, fn func(tx *store.Tx, st *store.PatchState) error) error {
	return s.o.Store.Update(ctx, func(tx *store.Tx) error {
		st, err := tx.PatchState(policy)
		if err != nil {
			return err
		}
		if err := fn(tx, &st); err != nil {
			return err
		}
		return tx.PutPatchState(st)
	})
}

// pause stops a running rollout from starting hosts: its window closed or reached its cutoff.
func (s *Scheduler) pause(ctx context.Context, f facts) error {
	if _, err := s.o.Engine.Pause(ctx, f.rollout.ID, ReasonWindowClosed); err != nil {
		return fmt.Errorf("pause %s: %w", f.rollout.ID, err)
	}
	return s.o.Store.Update(ctx, func(tx *store.Tx) error {
		_, err := tx.AppendEvent(store.Event{Kind: "patching.paused", Subject: f.rollout.ID,
			Message: fmt.Sprintf("rollout %s paused: %s; the next window of its kind resumes it", f.rollout.ID, ReasonWindowClosed)})
		return err
	})
}

// finish ends the scheduler's hold on a finished rollout; a failed or aborted candidate is
// marked bad.
func (s *Scheduler) finish(ctx context.Context, f facts) error {
	r := *f.rollout
	return s.o.Store.Update(ctx, func(tx *store.Tx) error {
		if r.State != StateSucceeded {
			reason := fmt.Sprintf("rollout %s %s", r.ID, r.State)
			if r.Reason != "" {
				reason += ": " + r.Reason
			}
			if err := tx.PutBadVersion(store.BadVersion{Source: f.pol.Source, Version: r.Version, Rollout: r.ID, Reason: reason}); err != nil {
				return err
			}
			m := notify.Message{Kind: notify.KindWindow, Severity: notify.SeverityWarning, Version: r.Version,
				Title:   fmt.Sprintf("nutcracker %s marked bad: %s", r.Version, reason),
				Summary: fmt.Sprintf("The scheduler will not propose %s again until a newer release appears or someone runs `patchctl release unmark %s`.", r.Version, r.Version)}
			if err := s.record(tx, window.Occurrence{}, "patching.bad", r.ID, m.Title, notify.OutboxPatchBad, "patching.bad:"+r.ID, &m); err != nil {
				return err
			}
		} else if _, err := tx.AppendEvent(store.Event{Kind: "patching.done", Subject: r.ID,
			Message: fmt.Sprintf("rollout %s of %s succeeded", r.ID, r.Version)}); err != nil {
			return err
		}
		cur, err := tx.PatchState(f.pol.Name)
		if err != nil {
			return err
		}
		// Window summaries still due stay; the rest of the state is the rollout's.
		return tx.PutPatchState(store.PatchState{Policy: f.pol.Name, Windows: cur.Windows})
	})
}

// record appends an event and, under an idempotency key, an outbox message, in tx.
func (s *Scheduler) record(tx *store.Tx, o window.Occurrence, kind, subject, msg, outbox, key string, m *notify.Message) error {
	fields := map[string]string{}
	if o.Window != nil {
		fields["window"] = o.Window.Name
	}
	if _, err := tx.AppendEvent(store.Event{Kind: kind, Subject: subject, Message: msg, Fields: fields}); err != nil {
		return err
	}
	if m == nil {
		return nil
	}
	_, err := notify.Enqueue(tx, key, notify.Envelope{Kind: outbox, Message: m})
	return err
}

// note records a scheduler action as an event.
func (s *Scheduler) note(ctx context.Context, o window.Occurrence, kind, subject, msg string) error {
	return s.o.Store.Update(ctx, func(tx *store.Tx) error { return s.record(tx, o, kind, subject, msg, "", "", nil) })
}

func occurrenceKey(o window.Occurrence) string {
	return o.Window.Name + ":" + o.Open.UTC().Format(time.RFC3339)
}

func windowSpan(o window.Occurrence) string {
	return fmt.Sprintf("%s %s – %s (%s), no new host after %s", o.Window.Name, o.Open.Format("2006-01-02 15:04"),
		o.Close.Format("15:04"), o.Window.Recurrence.Location(), o.LastStart.Format("15:04"))
}

// windowStarted tells Slack, once, that a window with work opened, and remembers it for the
// summary at its end.
func (s *Scheduler) windowStarted(ctx context.Context, o window.Occurrence, d Decision) error {
	key := "window.start:" + occurrenceKey(o)
	return s.update(ctx, d.Policy, func(tx *store.Tx, st *store.PatchState) error {
		if done, err := tx.Done(key); err != nil || done {
			return err
		}
		st.Windows = append(st.Windows, store.OpenWindow{Key: occurrenceKey(o), Name: o.Window.Name, Kind: string(o.Window.Kind), Open: o.Open, Close: o.Close})
		m := notify.Message{Kind: notify.KindWindow, Severity: notify.SeverityInfo, Version: d.Candidate,
			Title:   fmt.Sprintf("patch window %s (%s) opened: %s", o.Window.Name, o.Window.Kind, d.Action),
			Summary: d.Why,
			Fields:  []notify.Field{{Key: "Window", Value: windowSpan(o)}, {Key: "Hosts", Value: hostList(d.Hosts)}}}
		if d.FastTrack != "" {
			m.Security = true
			m.Fields = append(m.Fields, notify.Field{Key: "Fast-tracked because", Value: d.FastTrack})
		}
		if err := s.record(tx, o, "window.start", o.Window.Name, m.Title, notify.OutboxWindowStart, key, &m); err != nil {
			return err
		}
		return tx.MarkDone(key)
	})
}

// windowsEnded sends the summary of every window that opened with work and has closed.
func (s *Scheduler) windowsEnded(ctx context.Context, pol config.PatchPolicy, now time.Time) error {
	var st store.PatchState
	if err := s.o.Store.View(ctx, func(tx *store.Tx) (err error) {
		st, err = tx.PatchState(pol.Name)
		return err
	}); err != nil {
		return err
	}
	var ended []store.OpenWindow
	for _, w := range st.Windows {
		if !now.Before(w.Close) {
			ended = append(ended, w)
		}
	}
	if len(ended) == 0 {
		return nil
	}
	var r *Rollout
	if st.Rollout != "" {
		got, err := s.o.Engine.Get(ctx, st.Rollout)
		if err != nil {
			return err
		}
		r = &got
	}
	return s.update(ctx, pol.Name, func(tx *store.Tx, cur *store.PatchState) error {
		for _, w := range ended {
			cur.Windows = slices.DeleteFunc(cur.Windows, func(x store.OpenWindow) bool { return x.Key == w.Key })
			key := "window.end:" + w.Key
			if done, err := tx.Done(key); err != nil || done {
				if err != nil {
					return err
				}
				continue
			}
			m := notify.Message{Kind: notify.KindWindow, Severity: notify.SeverityInfo,
				Title:  fmt.Sprintf("patch window %s (%s) closed", w.Name, w.Kind),
				Fields: []notify.Field{{Key: "Window", Value: w.Open.Format("2006-01-02 15:04") + " – " + w.Close.Format("15:04 MST")}}}
			switch {
			case r != nil:
				m.Version = r.Version
				m.Summary = fmt.Sprintf("Rollout %s of %s: %d of %d hosts done, %s", r.ID, r.Version, r.Done, r.Hosts, r.State)
				if r.Reason != "" {
					m.Summary += " (" + r.Reason + ")"
				}
				m.Summary += "."
			default:
				m.Summary = "No rollout in progress."
			}
			if err := s.record(tx, window.Occurrence{}, "window.end", w.Name, m.Title+": "+m.Summary, notify.OutboxWindowEnd, key, &m); err != nil {
				return err
			}
			if err := tx.MarkDone(key); err != nil {
				return err
			}
		}
		return nil
	})
}

// remind tells Slack, once, about a window with work opening within the reminder time.
func (s *Scheduler) remind(ctx context.Context, cfg *config.Config, f facts, ws []*window.Window, now time.Time) error {
	if cfg.Patching.Reminder <= 0 {
		return nil
	}
	for _, w := range ws {
		o, ok := w.Next(now)
		if !ok || o.Open.Sub(now) > cfg.Patching.Reminder {
			continue
		}
		d := decide(f, o, o.Open)
		if !d.Work() {
			continue
		}
		key := "window.reminder:" + occurrenceKey(o)
		if err := s.o.Store.Update(ctx, func(tx *store.Tx) error {
			if done, err := tx.Done(key); err != nil || done {
				return err
			}
			m := notify.Message{Kind: notify.KindWindow, Severity: notify.SeverityInfo, Version: d.Candidate,
				Title:   fmt.Sprintf("patch window %s (%s) opens %s: %s %s", w.Name, w.Kind, o.Open.Format("2006-01-02 15:04 MST"), d.Action, d.Candidate),
				Summary: d.Why + ". The plan: patchctl windows; to hold it, add a blackout.",
				Fields:  []notify.Field{{Key: "Window", Value: windowSpan(o)}, {Key: "Hosts", Value: hostList(d.Hosts)}}}
			if err := s.record(tx, o, "window.reminder", w.Name, m.Title, notify.OutboxWindowReminder, key, &m); err != nil {
				return err
			}
			return tx.MarkDone(key)
		}); err != nil {
			return err
		}
	}
	return nil
}

func hostList(hosts []string) string {
	const show = 10
	if len(hosts) == 0 {
		return "none"
	}
	if len(hosts) > show {
		return fmt.Sprintf("%s and %d more", strings.Join(hosts[:show], ", "), len(hosts)-show)
	}
	return strings.Join(hosts, ", ")
}

// Approve lets the production waves of a scheduled rollout run in the next production window.
func (s *Scheduler) Approve(ctx context.Context, id string) (store.PatchState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out store.PatchState
	err := s.o.Store.Update(ctx, func(tx *store.Tx) error {
		for _, pol := range s.o.Config().Patching.Policies {
			st, err := tx.PatchState(pol.Name)
			if err != nil {
				return err
			}
			if st.Rollout != id {
				continue
			}
			st.Approved, st.ApprovedBy = true, store.Actor(ctx)
			out = st
			if err := tx.PutPatchState(st); err != nil {
				return err
			}
			_, err = tx.AppendEvent(store.Event{Kind: "patching.approved", Subject: id,
				Message: fmt.Sprintf("production of %s approved; it runs in the next production window", st.Version)})
			return err
		}
		return fmt.Errorf("rollout %s: %w", id, ErrNotScheduled)
	})
	return out, err
}

// ErrNotMarked means unmark found nothing to clear.
var ErrNotMarked = errors.New("version is not marked bad")

// Unmark clears a bad mark from a version, in every policy's source.
func (s *Scheduler) Unmark(ctx context.Context, version string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.o.Store.Update(ctx, func(tx *store.Tx) error {
		found := false
		seen := map[string]bool{}
		for _, pol := range s.o.Config().Patching.Policies {
			if seen[pol.Source] {
				continue
			}
			seen[pol.Source] = true
			bad, err := tx.BadVersions(pol.Source)
			if err != nil {
				return err
			}
			for _, b := range bad {
				if !sameVersion(b.Version, version) {
					continue
				}
				if _, err := tx.DeleteBadVersion(b.Source, b.Version); err != nil {
					return err
				}
				found = true
				if _, err := tx.AppendEvent(store.Event{Kind: "patching.unmarked", Subject: b.Version,
					Message: fmt.Sprintf("%s of %s may be a candidate again (was: %s)", b.Version, b.Source, b.Reason)}); err != nil {
					return err
				}
			}
		}
		if !found {
			return fmt.Errorf("%s: %w", version, ErrNotMarked)
		}
		return nil
	})
}

// InProgress lists the policies that have a rollout under way.
func (s *Scheduler) InProgress(ctx context.Context) ([]store.PatchState, error) {
	out := []store.PatchState{}
	err := s.o.Store.View(ctx, func(tx *store.Tx) error {
		for _, pol := range s.o.Config().Patching.Policies {
			st, err := tx.PatchState(pol.Name)
			if err != nil {
				return err
			}
			if st.Rollout != "" {
				out = append(out, st)
			}
		}
		return nil
	})
	return out, err
}
