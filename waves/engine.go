package waves

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/store"
)

// Options configure an Engine.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Policies returns the rollout policies in force (a reload may change them; a
	// running rollout keeps the policy it started with).
	Policies func() config.Rollouts
	// Targets lists the inventory's hosts when a rollout is planned.
	Targets func() []Target
	Hosts   Hosts
	// Observe, if set, is told how long each host and each wave took, and how it ended.
	Observe func(kind, state string, d time.Duration)
	// Wake, if set, is called after a transition queued a notification.
	Wake func()
}

// Engine plans and drives rollouts. Start, Pause, Resume, Promote, Abort and RollBack
// record the request; the goroutines started by Run do the work, in the daemon's context.
type Engine struct {
	st   *store.Store
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	ctx    context.Context // the daemon's, once Run is called
	active map[string]bool // rollouts with a driver goroutine
	// kicked: rollouts kicked while their driver ran; it drives them once more before it
	// stops, since it may have read the record before the change that kicked it.
	kicked map[string]bool
	wg     sync.WaitGroup
}

// New returns an engine recording into st.
func New(st *store.Store, opts Options) *Engine {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Targets == nil {
		opts.Targets = func() []Target { return nil }
	}
	if opts.Policies == nil {
		opts.Policies = func() config.Rollouts { return config.Default().Rollouts }
	}
	return &Engine{st: st, opts: opts, log: opts.Logger, active: map[string]bool{}, kicked: map[string]bool{}}
}

// Run drives every unfinished rollout, and those started later, until ctx ends; it
// returns when every driver has stopped. A rollout that was running when the daemon died
// continues where its records say it was; a paused one stays paused.
func (e *Engine) Run(ctx context.Context) {
	e.mu.Lock()
	e.ctx = ctx
	e.mu.Unlock()
	var ids []string
	err := e.st.View(ctx, func(tx *store.Tx) error {
		rs, err := tx.Rollouts()
		for _, r := range rs {
			if r.State == StateRunning || r.State == StateAborting {
				ids = append(ids, r.ID)
			}
		}
		return err
	})
	if err != nil {
		e.log.Error("list rollouts to resume", "err", err)
	}
	for _, id := range ids {
		e.log.Info("continuing rollout", "rollout", id)
		e.kick(id)
	}
	<-ctx.Done()
	e.mu.Lock()
	e.ctx = nil
	e.mu.Unlock()
	e.wg.Wait()
}

// Running reports whether Run is driving rollouts (the daemon); without it rollouts can
// be planned and read but not started.
func (e *Engine) Running() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ctx != nil
}

// kick starts the driver of a rollout unless one runs; a running one drives it once more.
func (e *Engine) kick(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx == nil {
		return
	}
	if e.active[id] {
		e.kicked[id] = true
		return
	}
	e.active[id] = true
	ctx := e.ctx
	e.wg.Go(func() {
		for {
			again, err := e.drive(ctx, id)
			if err != nil && ctx.Err() == nil {
				e.log.Error("rollout driver stopped", "rollout", id, "err", err)
			}
			if (again && ctx.Err() == nil) || !e.stopDriving(ctx, id) {
				continue
			}
			return
		}
	})
}

// stopDriving ends the driver of id unless it was kicked meanwhile (a promote or a resume
// right after the driver read the rollout as paused) and ctx still runs. Checking and
// letting go happen under one lock, so a later kick starts a new driver.
func (e *Engine) stopDriving(ctx context.Context, id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.kicked[id] && ctx.Err() == nil {
		delete(e.kicked, id)
		return false
	}
	delete(e.kicked, id)
	delete(e.active, id)
	return true
}

// Wait blocks until no driver runs (tests and benchmarks).
func (e *Engine) Wait() { e.wg.Wait() }

func newID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "r" + now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

// snapshot is a rollout record with its hosts.
type snapshot struct {
	store.Rollout
	Hosts map[string]store.RolloutHost
}

// View is a rollout as status shows it: its waves and, by name, its hosts.
type View struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Policy  string `json:"policy"`
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
	// AwaitingPromote: paused until promoted to the next wave.
	AwaitingPromote bool                         `json:"awaiting_promote"`
	HoldAfter       []string                     `json:"hold_after"`
	Waves           []WaveView                   `json:"waves"`
	Hosts           map[string]store.RolloutHost `json:"hosts"`
	Unmatched       []string                     `json:"unmatched"`
	Created         time.Time                    `json:"created"`
	Started         time.Time                    `json:"started,omitzero"`
	Finished        time.Time                    `json:"finished,omitzero"`
}

// Settled reports whether the rollout does nothing more until someone (a user, or the patch
// scheduler) acts: it is final, or paused with no host deploying or rolling back.
func (v View) Settled() bool {
	if Terminal(v.State) {
		return true
	}
	if v.State != StatePaused {
		return false
	}
	for _, h := range v.Hosts {
		if h.State == HostRunning || h.State == HostRollingBack {
			return false
		}
	}
	return true
}

// WaveView is one wave of a View.
type WaveView struct {
	Name        string    `json:"name"`
	State       string    `json:"state"`
	Reason      string    `json:"reason,omitempty"`
	Hosts       []string  `json:"hosts"`
	MaxParallel int       `json:"max_parallel"`
	MaxFailures int       `json:"max_failures"`
	SoakSeconds float64   `json:"soak_seconds"`
	Promote     bool      `json:"promote"`
	Started     time.Time `json:"started,omitzero"`
	SoakUntil   time.Time `json:"soak_until,omitzero"`
	Finished    time.Time `json:"finished,omitzero"`
}

func viewOf(r store.Rollout, hosts map[string]store.RolloutHost) View {
	if hosts == nil {
		hosts = map[string]store.RolloutHost{}
	}
	v := View{ID: r.ID, Version: r.Version, Policy: r.Policy, State: r.State, Reason: r.Reason, AwaitingPromote: r.AwaitingPromote,
		HoldAfter: nonNil(r.HoldAfter), Hosts: hosts, Unmatched: nonNil(r.Unmatched), Created: r.Created, Started: r.Started,
		Finished: r.Finished, Waves: []WaveView{}}
	for _, w := range r.Waves {
		v.Waves = append(v.Waves, WaveView{Name: w.Name, State: w.State, Reason: w.Reason, Hosts: nonNil(w.Hosts),
			MaxParallel: w.MaxParallel, MaxFailures: w.MaxFailures, SoakSeconds: w.Soak.Seconds(), Promote: w.Promote,
			Started: w.Started, SoakUntil: w.SoakUntil, Finished: w.Finished})
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Get returns a rollout with its hosts.
func (e *Engine) Get(ctx context.Context, id string) (View, error) {
	s, err := e.load(ctx, id)
	return viewOf(s.Rollout, s.Hosts), err
}

// load reads a rollout record with its hosts.
func (e *Engine) load(ctx context.Context, id string) (snapshot, error) {
	var v snapshot
	err := e.st.View(ctx, func(tx *store.Tx) (err error) {
		if v.Rollout, err = rolloutIn(tx, id); err != nil {
			return err
		}
		v.Hosts, err = tx.RolloutHosts(id)
		return err
	})
	return v, err
}

// rollout reads a rollout record without its hosts.
func (e *Engine) rollout(ctx context.Context, id string) (r store.Rollout, err error) {
	err = e.st.View(ctx, func(tx *store.Tx) error {
		r, err = rolloutIn(tx, id)
		return err
	})
	return r, err
}

// rolloutIn reads a rollout record in tx; a missing one is ErrNotFound.
func rolloutIn(tx *store.Tx, id string) (store.Rollout, error) {
	r, ok, err := tx.Rollout(id)
	if err == nil && !ok {
		err = fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return r, err
}

// List returns every rollout, oldest first, without its hosts.
func (e *Engine) List(ctx context.Context) ([]View, error) {
	var rs []store.Rollout
	err := e.st.View(ctx, func(tx *store.Tx) (err error) {
		rs, err = tx.Rollouts()
		return err
	})
	out := make([]View, len(rs))
	for i, r := range rs {
		out[i] = viewOf(r, nil)
	}
	return out, err
}

// Holder returns the unfinished rollout a host belongs to ("" = none), for refusing a
// manual deploy or rollback of a host inside a rollout.
func (e *Engine) Holder(ctx context.Context, host string) (id, state string, err error) {
	err = e.st.View(ctx, func(tx *store.Tx) error {
		id, state, err = holder(tx, host)
		return err
	})
	return id, state, err
}

func holder(tx *store.Tx, host string) (string, string, error) {
	id, err := tx.Lease(host)
	if err != nil || id == "" {
		return "", "", err
	}
	r, ok, err := tx.Rollout(id)
	if err != nil || !ok || Terminal(r.State) {
		return "", "", err
	}
	return id, r.State, nil
}

// Start checks every host, records the rollout and its frozen plan, and lets the daemon
// drive it. A host failing its pre-checks refuses the whole rollout unless the policy
// excludes such hosts.
func (e *Engine) Start(ctx context.Context, req Request) (View, error) {
	if !e.Running() {
		return View{}, fmt.Errorf("%w: rollouts run in the daemon; start `patchctl daemon`", ErrState)
	}
	p, pol, err := e.plan(ctx, req)
	if err != nil {
		return View{}, err
	}
	var refused []string
	deploys := 0
	for _, w := range p.Waves {
		for _, h := range w.Hosts {
			switch h.Action {
			case ActionRefuse:
				refused = append(refused, fmt.Sprintf("%s: %s", h.Host, strings.Join(h.Problems, "; ")))
			case ActionDeploy:
				deploys++
			}
		}
	}
	if len(refused) > 0 {
		return View{}, fmt.Errorf("%w: %d host(s) failed the pre-checks (policy %s: precheck_failure refuse):\n  %s",
			ErrRefused, len(refused), pol.Name, strings.Join(refused, "\n  "))
	}
	if deploys == 0 {
		return View{}, fmt.Errorf("%w: no host to move to %s (every selected host is on it, excluded, or no wave selects any)", ErrRefused, req.Version)
	}
	settings, err := json.Marshal(pol)
	if err != nil {
		return View{}, err
	}
	now := e.opts.Now()
	r := store.Rollout{ID: newID(now), Version: req.Version, Policy: pol.Name, State: StateRunning,
		HoldAfter: req.HoldAfter, Settings: settings, Unmatched: p.Unmatched, Created: now, Started: now}
	if r.HoldAfter == nil {
		r.HoldAfter = []string{}
	}
	var hosts []store.RolloutHost
	for _, w := range p.Waves {
		rw := store.RolloutWave{Name: w.Name, State: WavePending, MaxParallel: w.MaxParallel, MaxFailures: w.MaxFailures,
			Soak: time.Duration(w.SoakSeconds * float64(time.Second)), Promote: w.Promote, Hosts: []string{}}
		for _, h := range w.Hosts {
			rw.Hosts = append(rw.Hosts, h.Host)
			rh := store.RolloutHost{Rollout: r.ID, Host: h.Host, Wave: w.Name, State: HostPending, From: h.Current}
			switch h.Action {
			case ActionSkip:
				rh.State, rh.Note = HostSkipped, "already on "+req.Version
			case ActionExclude:
				rh.State, rh.Error = HostExcluded, strings.Join(h.Problems, "; ")
			}
			hosts = append(hosts, rh)
		}
		r.Waves = append(r.Waves, rw)
	}
	err = e.st.Update(ctx, func(tx *store.Tx) error {
		for _, h := range hosts {
			if h.State == HostExcluded {
				continue
			}
			if id, state, err := holder(tx, h.Host); err != nil {
				return err
			} else if id != "" {
				return fmt.Errorf("%w: %s is in rollout %s (%s)", ErrConflict, h.Host, id, state)
			}
			if err := tx.PutLease(h.Host, r.ID); err != nil {
				return err
			}
		}
		for _, h := range hosts {
			if err := tx.PutRolloutHost(h); err != nil {
				return err
			}
		}
		msg := fmt.Sprintf("rollout of %s started with policy %s: %s", r.Version, r.Policy, waveSizes(r))
		return e.record(tx, r, notify.RolloutStarted, "", "", msg)
	})
	if err != nil {
		return View{}, err
	}
	e.wake()
	e.log.Info("rollout started", "rollout", r.ID, "version", r.Version, "policy", r.Policy)
	e.kick(r.ID)
	return e.Get(ctx, r.ID)
}

func waveSizes(r store.Rollout) string {
	parts := make([]string, len(r.Waves))
	for i, w := range r.Waves {
		parts[i] = fmt.Sprintf("%s %d", w.Name, len(w.Hosts))
	}
	return strings.Join(parts, ", ")
}

// record writes the rollout and appends its event; events that reach Slack are queued in
// the outbox in the same transaction.
func (e *Engine) record(tx *store.Tx, r store.Rollout, event, wave, host, msg string) error {
	if err := tx.PutRollout(r); err != nil {
		return err
	}
	return e.note(tx, r, event, wave, host, msg)
}

// note appends a rollout event, and queues it for Slack when it is one Slack hears about.
func (e *Engine) note(tx *store.Tx, r store.Rollout, event, wave, host, msg string) error {
	fields := map[string]string{"version": r.Version, "state": r.State}
	if wave != "" {
		fields["wave"] = wave
	}
	if host != "" {
		fields["host"] = host
	}
	ev, err := tx.AppendEvent(store.Event{Kind: event, Subject: r.ID, Message: msg, Fields: fields})
	if err != nil {
		return err
	}
	if !slices.Contains(notify.RolloutEvents, event) {
		return nil
	}
	n := notify.RolloutNote{ID: r.ID, Version: r.Version, Policy: r.Policy, Wave: wave, Host: host}
	switch event {
	case notify.RolloutStarted:
		for _, w := range r.Waves {
			n.Waves = append(n.Waves, notify.RolloutWaveNote{Name: w.Name, Hosts: len(w.Hosts)})
		}
	case notify.RolloutWaveStart, notify.RolloutWavePassed, notify.RolloutPromoted, notify.RolloutSucceeded:
	default:
		n.Reason = msg
	}
	_, err = notify.Enqueue(tx, fmt.Sprintf("rollout:%s:%d", r.ID, ev.Seq), notify.Envelope{Kind: event, Rollout: &n, Thread: "rollout:" + r.ID})
	return err
}

func (e *Engine) wake() {
	if e.opts.Wake != nil {
		e.opts.Wake()
	}
}

// transition loads a rollout, lets fn change it inside one transaction, and records the
// event fn names; fn returning "" records nothing.
func (e *Engine) transition(ctx context.Context, id string, fn func(tx *store.Tx, r *store.Rollout) (event, wave, host, msg string, err error)) (store.Rollout, error) {
	var out store.Rollout
	// A transition survives the caller's cancellation: a half-recorded step is worse
	// than a late one.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := e.st.Update(ctx, func(tx *store.Tx) error {
		r, err := rolloutIn(tx, id)
		if err != nil {
			return err
		}
		event, wave, host, msg, err := fn(tx, &r)
		if err != nil {
			return err
		}
		out = r
		if event == "" {
			return tx.PutRollout(r)
		}
		return e.record(tx, r, event, wave, host, msg)
	})
	if err == nil {
		e.wake()
	}
	return out, err
}

// releaseLeases frees the hosts of a finished rollout.
func releaseLeases(tx *store.Tx, r store.Rollout) error {
	for _, w := range r.Waves {
		for _, h := range w.Hosts {
			if err := tx.DeleteLease(h, r.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// Pause stops a running rollout from starting more hosts; hosts already deploying finish.
func (e *Engine) Pause(ctx context.Context, id, reason string) (View, error) {
	if reason == "" {
		reason = "paused by request"
	}
	r, err := e.transition(ctx, id, func(tx *store.Tx, r *store.Rollout) (string, string, string, string, error) {
		if r.State != StateRunning {
			return "", "", "", "", fmt.Errorf("%w: rollout %s is %s, only a running rollout can be paused", ErrState, id, r.State)
		}
		r.State, r.Reason = StatePaused, reason
		return notify.RolloutPaused, "", "", reason, nil
	})
	return viewOf(r, nil), err
}

// Resume continues a paused rollout. A wave that failed gets a fresh failure budget and,
// when its hosts are done, a fresh soak measured from a new snapshot.
func (e *Engine) Resume(ctx context.Context, id string) (View, error) {
	r, err := e.transition(ctx, id, func(tx *store.Tx, r *store.Rollout) (string, string, string, string, error) {
		switch {
		case r.State != StatePaused:
			return "", "", "", "", fmt.Errorf("%w: rollout %s is %s, only a paused rollout can be resumed", ErrState, id, r.State)
		case r.AwaitingPromote:
			return "", "", "", "", fmt.Errorf("%w: rollout %s waits for a promote to its next wave: use promote", ErrState, id)
		}
		hosts, err := tx.RolloutHosts(id)
		if err != nil {
			return "", "", "", "", err
		}
		wave := ""
		for i := range r.Waves {
			w := &r.Waves[i]
			if w.State == WaveFailed {
				// The hosts that failed stay failed; the budget restarts from them.
				w.State, w.Reason, w.Baseline = WaveRunning, "", nil
				w.MaxFailures += failures(*w, hosts)
				wave = w.Name
			}
		}
		r.State, r.Reason = StateRunning, ""
		return notify.RolloutResumed, wave, "", "resumed", nil
	})
	if err == nil {
		e.kick(id)
	}
	return viewOf(r, nil), err
}

// Promote lets a rollout that waits after a wave go on to the next.
func (e *Engine) Promote(ctx context.Context, id string) (View, error) {
	r, err := e.transition(ctx, id, func(tx *store.Tx, r *store.Rollout) (string, string, string, string, error) {
		if r.State != StatePaused || !r.AwaitingPromote {
			return "", "", "", "", fmt.Errorf("%w: rollout %s is %s and does not wait for a promote", ErrState, id, describe(*r))
		}
		r.State, r.Reason, r.AwaitingPromote = StateRunning, "", false
		next := ""
		if i := currentWave(*r); i < len(r.Waves) {
			next = r.Waves[i].Name
		}
		return notify.RolloutPromoted, next, "", "promoted to wave " + next, nil
	})
	if err == nil {
		e.kick(id)
	}
	return viewOf(r, nil), err
}

func describe(r store.Rollout) string {
	if r.Reason != "" {
		return r.State + " (" + r.Reason + ")"
	}
	return r.State
}

// Abort stops a running or paused rollout and rolls back every host it changed, newest
// wave first, as many at once as each wave allows.
func (e *Engine) Abort(ctx context.Context, id, reason string) (View, error) {
	return e.undo(ctx, id, reason, StateAborted, func(r store.Rollout) error {
		if r.State != StateRunning && r.State != StatePaused {
			return fmt.Errorf("%w: rollout %s is %s; abort stops a running or paused rollout (rollback --rollout undoes a finished one)", ErrState, id, r.State)
		}
		return nil
	})
}

// RollBack puts every host of a rollout back on the version it ran before, whatever state
// the rollout is in (a running one is stopped first).
func (e *Engine) RollBack(ctx context.Context, id string) (View, error) {
	return e.undo(ctx, id, "rollback requested", StateRolledBack, func(r store.Rollout) error {
		if r.State == StateAborting || r.State == StateAborted || r.State == StateRolledBack {
			return fmt.Errorf("%w: rollout %s is already %s", ErrState, id, r.State)
		}
		return nil
	})
}

func (e *Engine) undo(ctx context.Context, id, reason, final string, allowed func(store.Rollout) error) (View, error) {
	if !e.Running() {
		return View{}, fmt.Errorf("%w: rollouts run in the daemon; start `patchctl daemon`", ErrState)
	}
	if reason == "" {
		reason = "aborted by request"
	}
	r, err := e.transition(ctx, id, func(tx *store.Tx, r *store.Rollout) (string, string, string, string, error) {
		if err := allowed(*r); err != nil {
			return "", "", "", "", err
		}
		if Terminal(r.State) {
			// Undoing a finished rollout takes its hosts again.
			for _, w := range r.Waves {
				for _, h := range w.Hosts {
					if hid, state, err := holder(tx, h); err != nil {
						return "", "", "", "", err
					} else if hid != "" {
						return "", "", "", "", fmt.Errorf("%w: %s is in rollout %s (%s)", ErrConflict, h, hid, state)
					}
					if err := tx.PutLease(h, id); err != nil {
						return "", "", "", "", err
					}
				}
			}
			r.Finished = time.Time{}
		}
		r.State, r.Reason, r.AwaitingPromote, r.Undo = StateAborting, reason, false, final
		return notify.RolloutAborting, "", "", reason, nil
	})
	if err == nil {
		e.kick(id)
	}
	return viewOf(r, nil), err
}
