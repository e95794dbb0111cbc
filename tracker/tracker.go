// Package tracker polls release sources (GitHub's API, a mirror of it, a local directory),
// records releases and advisories in the store, decides which are security-relevant and
// queues one notification per new release or advisory, in the same transaction.
package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/internal/jsonfmt"
	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/store"
)

// Poll outcomes, as stored in store.PollState.LastOutcome and used as metric labels.
const (
	OutcomeOK          = "ok"           // something new was recorded (or the first poll)
	OutcomeUnchanged   = "unchanged"    // nothing new
	OutcomeRateLimited = "rate_limited" // the server asked us to wait
	OutcomeDeferred    = "deferred"     // not polled: still waiting for a rate-limit reset
	OutcomeError       = "error"
)

// Options tune a Tracker.
type Options struct {
	// Keywords flag release notes as security-relevant (case-insensitive, at word starts).
	Keywords []string
	Logger   *slog.Logger
	Metrics  *Metrics
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Tracker polls its sources and records what they list.
type Tracker struct {
	st      *store.Store
	watches []Watch
	flag    *flagger
	opts    Options
	mu      sync.Mutex // one poll at a time (cron and a manual poll may overlap)
}

// New returns a tracker over st polling watches.
func New(st *store.Store, watches []Watch, opts Options) *Tracker {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Tracker{st: st, watches: watches, flag: newFlagger(opts.Keywords), opts: opts}
}

// Report is the outcome of one Poll.
type Report struct {
	Sources []SourceReport `json:"sources"`
}

// SourceReport is the outcome of polling one source.
type SourceReport struct {
	Source        string           `json:"source"`
	Outcome       string           `json:"outcome"`
	Error         string           `json:"error,omitempty"`
	NotBefore     time.Time        `json:"not_before,omitzero"` // rate limited: no request before
	First         bool             `json:"first,omitempty"`     // first successful poll: summary only
	NewReleases   []store.Release  `json:"new_releases,omitempty"`
	NewAdvisories []store.Advisory `json:"new_advisories,omitempty"`
	Releases      int              `json:"releases"`   // known releases of the source
	Advisories    int              `json:"advisories"` // known advisories of the source
	Latest        *store.Release   `json:"latest,omitempty"`
	Stats         FetchStats       `json:"stats"`
	Duration      jsonfmt.Seconds  `json:"duration_seconds"`
}

// Poll polls every source, one after the other; a failing source does not stop the
// others. The error joins the failures (errors.Is(err, ErrRateLimited) for rate limits).
func (t *Tracker) Poll(ctx context.Context) (Report, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var rep Report
	var errs []error
	for _, w := range t.watches {
		sr, err := t.pollOne(ctx, w)
		rep.Sources = append(rep.Sources, sr)
		t.opts.Metrics.poll(sr.Source, sr.Outcome)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return rep, errors.Join(errs...)
}

func (t *Tracker) pollOne(ctx context.Context, w Watch) (SourceReport, error) {
	name := w.Source.Name()
	start := t.opts.Now()
	log := t.opts.Logger.With("source", name)
	sr := SourceReport{Source: name}

	var state store.PollState
	if err := t.st.View(ctx, func(tx *store.Tx) (err error) {
		state, err = tx.PollState(name)
		return err
	}); err != nil {
		sr.Outcome, sr.Error = OutcomeError, err.Error()
		return sr, fmt.Errorf("%s: %w", name, err)
	}
	if start.Before(state.NotBefore) {
		sr.Outcome, sr.NotBefore = OutcomeDeferred, state.NotBefore
		sr.Error = fmt.Sprintf("not polled: rate limited until %s", state.NotBefore.UTC().Format(time.RFC3339))
		log.Debug("poll deferred by rate limit", "until", state.NotBefore)
		return sr, fmt.Errorf("%s: %w: waiting until %s", name, ErrRateLimited, state.NotBefore.UTC().Format(time.RFC3339))
	}

	snap, err := w.Source.Fetch(ctx)
	sr.Stats = snap.Stats
	if err != nil {
		err = t.recordFailure(ctx, name, err, &sr)
		sr.Duration = jsonfmt.Seconds(t.opts.Now().Sub(start))
		log.Warn("poll failed", "outcome", sr.Outcome, "err", err)
		return sr, err
	}
	t.flag.flag(snap.Releases, snap.Advisories)
	err = t.st.Update(ctx, func(tx *store.Tx) error { return t.record(tx, w, snap, &sr) })
	sr.Duration = jsonfmt.Seconds(t.opts.Now().Sub(start))
	if err != nil {
		// Nothing was written: the next poll sees the same changes again.
		sr = SourceReport{Source: name, Outcome: OutcomeError, Error: err.Error(), Stats: snap.Stats, Duration: sr.Duration}
		return sr, fmt.Errorf("%s: record poll: %w", name, err)
	}
	log.Info("polled", "outcome", sr.Outcome, "new_releases", len(sr.NewReleases),
		"new_advisories", len(sr.NewAdvisories), "requests", sr.Stats.Requests, "not_modified", sr.Stats.NotModified)
	return sr, nil
}

// record writes one successful poll: records, events, alerts and state, all in tx.
func (t *Tracker) record(tx *store.Tx, w Watch, snap Snapshot, sr *SourceReport) error {
	name := w.Source.Name()
	state, err := tx.PollState(name)
	if err != nil {
		return err
	}
	stored, err := tx.Releases(name)
	if err != nil {
		return err
	}
	storedAdv, err := tx.Advisories(name)
	if err != nil {
		return err
	}
	sr.First = state.LastSuccess.IsZero() && len(stored) == 0 && len(storedAdv) == 0

	// Only new or changed records are written: an unchanged poll writes no record.
	known := make(map[string]store.Release, len(stored))
	for _, r := range stored {
		known[r.Tag] = r
	}
	for _, r := range snap.Releases {
		if old, ok := known[r.Tag]; !ok {
			r.FirstSeen = tx.Now()
			sr.NewReleases = append(sr.NewReleases, r)
		} else if r.FirstSeen = old.FirstSeen; sameJSON(old, r) {
			continue
		}
		if err := tx.PutRelease(r); err != nil {
			return err
		}
		known[r.Tag] = r
	}
	knownAdv := make(map[string]store.Advisory, len(storedAdv))
	for _, a := range storedAdv {
		knownAdv[a.ID] = a
	}
	for _, a := range snap.Advisories {
		if old, ok := knownAdv[a.ID]; !ok {
			a.FirstSeen = tx.Now()
			if a.WithdrawnAt.IsZero() {
				sr.NewAdvisories = append(sr.NewAdvisories, a)
			}
		} else if a.FirstSeen = old.FirstSeen; sameJSON(old, a) {
			continue
		}
		if err := tx.PutAdvisory(a); err != nil {
			return err
		}
		knownAdv[a.ID] = a
	}
	SortReleases(sr.NewReleases)

	all := make([]store.Release, 0, len(known))
	for _, r := range known {
		all = append(all, r)
	}
	advs := knownAdv
	sr.Releases, sr.Advisories = len(all), len(advs)
	if l, ok := Latest(all, w.Prereleases); ok {
		sr.Latest = &l
	}

	if sr.First {
		security := 0
		for _, r := range all {
			if r.Security {
				security++
			}
		}
		p := notify.Envelope{Kind: notify.OutboxTrackingStart, Source: name, Latest: sr.Latest, Count: len(all), Security: security}
		msg := fmt.Sprintf("tracking %s: %d releases, %d security-relevant", name, len(all), security)
		if sr.Latest != nil {
			msg += ", latest " + sr.Latest.Version
		}
		if err := alert(tx, "tracking:"+name, p, store.Event{Kind: "tracking.start", Subject: name, Message: msg}); err != nil {
			return err
		}
	} else {
		for _, r := range sr.NewReleases {
			ev := store.Event{Kind: "release.new", Subject: name, Message: "new release " + r.Tag,
				Fields: map[string]string{"tag": r.Tag, "version": r.Version,
					"prerelease": strconv.FormatBool(r.Prerelease), "security": strconv.FormatBool(r.Security)}}
			if len(r.Reasons) > 0 {
				ev.Fields["reasons"] = strings.Join(r.Reasons, ",")
			}
			if err := alert(tx, "release:"+name+":"+r.Tag, notify.Envelope{Kind: notify.OutboxReleaseNew, Release: &r}, ev); err != nil {
				return err
			}
		}
		for _, a := range sr.NewAdvisories {
			ev := store.Event{Kind: "advisory.new", Subject: name, Message: "new advisory " + a.ID + ": " + a.Summary,
				Fields: map[string]string{"id": a.ID, "cve": a.CVE, "severity": a.Severity, "patched": a.PatchedVersion}}
			if err := alert(tx, "advisory:"+name+":"+a.ID, notify.Envelope{Kind: notify.OutboxAdvisoryNew, Advisory: &a}, ev); err != nil {
				return err
			}
		}
	}

	sr.Outcome = OutcomeUnchanged
	if sr.First || len(sr.NewReleases) > 0 || len(sr.NewAdvisories) > 0 {
		sr.Outcome = OutcomeOK
	}
	state.LastAttempt, state.LastSuccess = t.opts.Now(), t.opts.Now()
	state.LastOutcome, state.LastError = sr.Outcome, ""
	state.ConsecutiveFailures, state.NotBefore = 0, time.Time{}
	if err := tx.PutPollState(state); err != nil {
		return err
	}
	_, err = tx.AppendEvent(store.Event{Kind: "poll.ok", Subject: name,
		Message: fmt.Sprintf("%d releases, %d new; %d advisories, %d new", sr.Releases, len(sr.NewReleases), sr.Advisories, len(sr.NewAdvisories)),
		Fields: map[string]string{"outcome": sr.Outcome, "requests": strconv.Itoa(sr.Stats.Requests),
			"not_modified": strconv.Itoa(sr.Stats.NotModified), "replayed": strconv.Itoa(sr.Stats.Replayed)}})
	return err
}

// alert queues a notification under its idempotency key and logs the event, unless that
// key was ever queued before (a restart or a repeated poll never alerts twice).
func alert(tx *store.Tx, key string, payload notify.Envelope, ev store.Event) error {
	added, err := notify.Enqueue(tx, key, payload)
	if err != nil || !added {
		return err
	}
	_, err = tx.AppendEvent(ev)
	return err
}

// recordFailure stores a failed poll without touching any release or advisory.
func (t *Tracker) recordFailure(ctx context.Context, name string, ferr error, sr *SourceReport) error {
	sr.Outcome, sr.Error = OutcomeError, ferr.Error()
	kind := "poll.failed"
	var rl *RateLimitError
	if errors.As(ferr, &rl) {
		sr.Outcome, sr.NotBefore, kind = OutcomeRateLimited, rl.Until, "poll.rate_limited"
	}
	ferr = fmt.Errorf("%s: %w", name, ferr)
	err := t.st.Update(ctx, func(tx *store.Tx) error {
		state, err := tx.PollState(name)
		if err != nil {
			return err
		}
		state.LastAttempt, state.LastOutcome, state.LastError = t.opts.Now(), sr.Outcome, sr.Error
		state.ConsecutiveFailures++
		if rl != nil {
			state.NotBefore = rl.Until
		}
		if err := tx.PutPollState(state); err != nil {
			return err
		}
		ev := store.Event{Kind: kind, Subject: name, Message: sr.Error,
			Fields: map[string]string{"failures": strconv.Itoa(state.ConsecutiveFailures)}}
		if rl != nil {
			ev.Fields["not_before"] = rl.Until.UTC().Format(time.RFC3339)
		}
		_, err = tx.AppendEvent(ev)
		return err
	})
	if err != nil {
		return errors.Join(ferr, fmt.Errorf("%s: record failure: %w", name, err))
	}
	return ferr
}

// Watches builds the sources of a configuration: a Dir for sources with dir set, else a
// GitHub source using st as its HTTP cache.
func Watches(cfg *config.Config, st *store.Store, m *Metrics, logger *slog.Logger) ([]Watch, error) {
	var out []Watch
	for _, s := range cfg.Tracker.Sources {
		var src Source
		if s.Dir != "" {
			src = NewDir(s.Repo, s.Dir, DirOptions{Tags: s.WantTags(), Advisories: s.WantAdvisories(), Logger: logger})
		} else {
			g, err := NewGitHub(s.Repo, GitHubOptions{
				APIURL:     cfg.GitHub.APIURL,
				Token:      cfg.GitHub.Token.Value(),
				Timeout:    cfg.GitHub.Timeout,
				Tags:       s.WantTags(),
				Advisories: s.WantAdvisories(),
				Store:      st,
				Logger:     logger,
				Metrics:    m,
			})
			if err != nil {
				return nil, err
			}
			src = g
		}
		out = append(out, Watch{Source: src, Prereleases: s.Prereleases})
	}
	return out, nil
}

// sameJSON reports whether two records would be stored identically.
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}
