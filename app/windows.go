package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/internal/jsonfmt"
	"github.com/patchctl/patchctl/inventory"
	"github.com/patchctl/patchctl/patching"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/tracker"
	"github.com/patchctl/patchctl/window"
)

// WindowsArgs ask for the coming windows.
type WindowsArgs struct {
	Next int `json:"next,omitempty"` // how many openings (default 5)
}

// WindowsReport is what `patchctl windows` shows.
type WindowsReport struct {
	Now     time.Time     `json:"now"`
	Windows []WindowEntry `json:"windows"`
	// Rollouts are the scheduler's rollouts in progress, one per policy at most.
	Rollouts []PatchRollout `json:"rollouts"`
}

// PatchRollout is a rollout the scheduler drives.
type PatchRollout struct {
	Policy     string    `json:"policy"`
	Rollout    string    `json:"rollout"`
	Version    string    `json:"version"`
	FastTrack  string    `json:"fast_track,omitempty"`
	Approved   bool      `json:"approved,omitempty"`
	ApprovedBy string    `json:"approved_by,omitempty"`
	Since      time.Time `json:"since"`
}

func patchRollout(st store.PatchState) PatchRollout {
	return PatchRollout{Policy: st.Policy, Rollout: st.Rollout, Version: st.Version, FastTrack: st.FastTrack,
		Approved: st.Approved, ApprovedBy: st.ApprovedBy, Since: st.Since}
}

// WindowEntry is one opening of a window.
type WindowEntry struct {
	Name         string          `json:"name"`
	Kind         string          `json:"kind"`
	Policy       string          `json:"policy"`
	Environments []string        `json:"environments"`
	Recurrence   string          `json:"recurrence"`
	TimeZone     string          `json:"time_zone"`
	Opens        time.Time       `json:"opens"` // in the window's zone
	OpensUTC     time.Time       `json:"opens_utc"`
	Closes       time.Time       `json:"closes"`
	ClosesUTC    time.Time       `json:"closes_utc"`
	LastStart    time.Time       `json:"last_start"` // no new host after this (closes minus cutoff)
	Duration     jsonfmt.Seconds `json:"duration_seconds"`
	Cutoff       jsonfmt.Seconds `json:"cutoff_seconds"`
	Open         bool            `json:"open"` // open now
	// Blackout is set when a freeze keeps this opening shut; ClosesEarly when one starts inside it.
	Blackout    string `json:"blackout,omitempty"`
	ClosesEarly string `json:"closes_early,omitempty"`
	// Plan is what the window would do (now if open, else at its opening) and why.
	Plan patching.Decision `json:"plan"`
}

// maxNext bounds --next.
const maxNext = 1000

func setupWindows(ctx context.Context, a *App) error {
	if err := a.checkPins(ctx, a.config()); err != nil {
		return err
	}
	a.patch = patching.New(patching.Options{Store: a.store, Clock: patching.ClockFunc(a.now), Config: a.config,
		Logger: a.log.With("component", "patching"),
		Engine: patchEngine{e: a.rollouts, policies: func() config.Rollouts { return a.config().Rollouts }},
		Hosts: func(ctx context.Context) ([]inventory.Exposure, error) {
			rep, err := a.fleet.report(ctx)
			return rep.Hosts, err
		}})
	a.addReloader(func(ctx context.Context, cfg *config.Config) (func(), error) {
		return func() {}, a.checkPins(ctx, cfg)
	})
	handle(a, "windows", func(ctx context.Context, args WindowsArgs) (any, error) {
		switch {
		case args.Next == 0:
			args.Next = 5
		case args.Next < 0 || args.Next > maxNext:
			return nil, &Error{Kind: KindUsage, Msg: fmt.Sprintf("--next must be between 1 and %d", maxNext)}
		}
		now := a.now()
		rep := WindowsReport{Now: now.UTC(), Windows: []WindowEntry{}, Rollouts: []PatchRollout{}}
		for _, o := range window.Upcoming(a.config().Windows(), now, args.Next) {
			e := windowEntry(o, now)
			var err error
			if e.Plan, err = a.patch.Plan(ctx, o); err != nil {
				return nil, err
			}
			rep.Windows = append(rep.Windows, e)
		}
		sts, err := a.patch.InProgress(ctx)
		for _, st := range sts {
			rep.Rollouts = append(rep.Rollouts, patchRollout(st))
		}
		return rep, err
	})
	a.addLoop(a.patchLoop)
	// A tick on request: the demo and tests move their clock and ask for one at once.
	handle(a, "patching.tick", func(ctx context.Context, _ struct{}) (any, error) {
		if !a.serving() {
			return nil, &Error{Kind: KindFailed, Msg: "the patch scheduler runs in the daemon"}
		}
		return struct{}{}, a.patch.Tick(ctx)
	})
	handle(a, "rollout.approve", func(ctx context.Context, args RolloutIDArgs) (any, error) {
		st, err := a.patch.Approve(ctx, args.ID)
		if errors.Is(err, patching.ErrNotScheduled) {
			return nil, &Error{Kind: KindUsage, Msg: err.Error()}
		}
		return patchRollout(st), err
	})
	handle(a, "release.unmark", func(ctx context.Context, args UnmarkArgs) (any, error) {
		err := a.patch.Unmark(ctx, args.Version)
		if errors.Is(err, patching.ErrNotMarked) {
			return nil, &Error{Kind: KindFailed, Msg: err.Error()}
		}
		return args, err
	})
	return nil
}

// RolloutIDArgs name a rollout.
type RolloutIDArgs struct {
	ID string `json:"id"`
}

// UnmarkArgs name a version to clear.
type UnmarkArgs struct {
	Version string `json:"version"`
}

func windowEntry(o window.Occurrence, now time.Time) WindowEntry {
	w := o.Window
	e := WindowEntry{
		Name: w.Name, Kind: string(w.Kind), Policy: w.Policy, Environments: w.Environments,
		Recurrence: w.Recurrence.String(), TimeZone: w.Recurrence.Location().String(),
		Opens: o.Open, OpensUTC: o.Open.UTC(), Closes: o.Close, ClosesUTC: o.Close.UTC(), LastStart: o.LastStart,
		Duration: jsonfmt.Seconds(w.Duration), Cutoff: jsonfmt.Seconds(w.Cutoff), Open: o.Contains(now),
	}
	if e.Environments == nil {
		e.Environments = []string{}
	}
	if o.Blackout != nil {
		e.Blackout = o.Blackout.String()
	}
	if o.Trimmed != nil {
		e.ClosesEarly = o.Trimmed.String()
	}
	return e
}

// checkPins refuses a pinned version the tracker does not know, naming its line. A source
// never polled yet cannot tell; the scheduler then says why it has no candidate.
func (a *App) checkPins(ctx context.Context, cfg *config.Config) error {
	for i, p := range cfg.Patching.Policies {
		if p.Pin == "" {
			continue
		}
		var rels []store.Release
		if err := a.store.View(ctx, func(tx *store.Tx) (err error) {
			rels, err = tx.Releases(p.Source)
			return err
		}); err != nil {
			return err
		}
		if len(rels) > 0 && !hasVersion(rels, p.Pin) {
			err := cfg.ErrorAt(fmt.Sprintf("patching.policies[%d].pin", i), "version %s is not a release of %s that patchctl knows (see patchctl releases)", p.Pin, p.Source)
			return &Error{Kind: KindUsage, Msg: err.Error()}
		}
	}
	return nil
}

func hasVersion(rels []store.Release, v string) bool {
	want, err := tracker.ParseVersion(v)
	if err != nil {
		return false
	}
	for _, r := range rels {
		if got, err := tracker.ParseVersion(r.Version); err == nil && got.Equal(want) {
			return true
		}
	}
	return false
}

// patchInterval is how often the daemon's scheduler looks at the windows: their edges are
// minutes apart, and every decision is idempotent, so a tick late by this much is harmless.
const patchInterval = 15 * time.Second

// patchLoop ticks the patch scheduler until ctx ends.
func (a *App) patchLoop(ctx context.Context) {
	t := time.NewTicker(patchInterval)
	defer t.Stop()
	for {
		if err := a.patch.Tick(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("patch scheduler", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
