// Package notifytest is the conformance suite every notify.Notifier passes. Each
// implementation's tests call Run with a Target that wires the notifier to a receiver
// behaving as the suite asks.
package notifytest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/store"
)

// Fault is how a remote receiver misbehaves for one case.
type Fault string

// Faults a remote Target simulates. A receiver told to fail fails every request.
const (
	OK          Fault = "ok"           // accepts the message
	RateLimited Fault = "rate-limited" // 429 with Retry-After: RetryAfterSeconds
	ServerError Fault = "server-error" // 500
	Rejected    Fault = "rejected"     // a permanent refusal (bad request, unknown channel...)
	Down        Fault = "down"         // nothing listens any more
	Slow        Fault = "slow"         // answers only after the notifier's Timeout
)

// Remote lists every fault; a Target for a network notifier supports all of them.
var Remote = []Fault{RateLimited, ServerError, Rejected, Down, Slow}

const (
	// RetryAfterSeconds is what a RateLimited receiver sends in Retry-After.
	RetryAfterSeconds = 7
	// Timeout is the per-call timeout a Target must configure on its notifier. It is
	// generous because every fault but Slow must answer within it on a loaded CI machine.
	Timeout = 5 * time.Second
	// slowBound is how long a call may take against a Slow receiver: the timeout plus
	// generous slack, far below the receiver's own delay (SlowDelay).
	slowBound = Timeout + 10*time.Second
	// SlowDelay is how long a Slow receiver holds a request before it answers.
	SlowDelay = time.Minute
)

// TimeoutFor is the per-call timeout a Target configures for fault f: short against a Slow
// receiver, whose test is about that timeout; generous otherwise, so that a loaded machine's
// slow answer is not mistaken for a timeout.
func TimeoutFor(f Fault) time.Duration {
	if f == Slow {
		return Timeout
	}
	return time.Minute
}

// Setup is one notifier under test and what its receiver saw.
type Setup struct {
	Notifier notify.Notifier
	// Received returns every payload the receiver accepted, decoded to searchable text
	// (form fields decoded, JSON as sent).
	Received func() []string
	// Secrets must never appear in an error or in the notifier's printed form.
	Secrets []string
}

// Target builds the notifier under test.
type Target struct {
	// New wires a fresh notifier to a receiver that behaves as f says. The receiver is
	// cleaned up with t.
	New func(t *testing.T, f Fault) Setup
	// Faults the receiver can simulate: Remote for network notifiers, none for local ones.
	Faults []Fault
}

// Release is the message the suite sends: a security-relevant release with everything set.
func Release() notify.Message {
	return notify.Message{
		Kind:     notify.KindRelease,
		Title:    "twemproxy 0.5.1 released",
		Summary:  "Fixes a crash on malformed redis MULTI replies.\n\n* bounded buffers\n* faster ketama",
		Severity: notify.SeverityCritical,
		Security: true,
		Version:  "0.5.1",
		Date:     time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		URL:      "https://github.com/twitter/twemproxy/releases/tag/0.5.1",
		Fields:   []notify.Field{{Key: "Exposed hosts", Value: "3"}},
	}
}

// Run runs the suite against tg.
func Run(t *testing.T, tg Target) {
	t.Helper()
	t.Run("delivers", func(t *testing.T) {
		s := tg.New(t, OK)
		if err := s.Notifier.Notify(t.Context(), Release()); err != nil {
			t.Fatalf("Notify: %v", err)
		}
		got := only(t, s)
		for _, want := range []string{"0.5.1", Release().URL, "2024-05-01"} {
			if !strings.Contains(got, want) {
				t.Errorf("payload lacks %q:\n%s", want, got)
			}
		}
		if !strings.Contains(strings.ToLower(got), "security") {
			t.Errorf("payload lacks the security flag:\n%s", got)
		}
		noSecret(t, s, nil)
	})
	t.Run("no security flag when not security relevant", func(t *testing.T) {
		s := tg.New(t, OK)
		m := Release()
		m.Security = false
		m.Severity = notify.SeverityInfo
		if err := s.Notifier.Notify(t.Context(), m); err != nil {
			t.Fatalf("Notify: %v", err)
		}
		if got := only(t, s); strings.Contains(strings.ToLower(got), "security") {
			t.Errorf("payload of a plain release mentions security:\n%s", got)
		}
	})
	t.Run("oversized message fits the receiver", func(t *testing.T) {
		s := tg.New(t, OK)
		m := Release()
		m.Title = strings.Repeat("très long titre <&> ", 20)
		m.Summary = strings.Repeat("Notes with <tags> & *stars* and ünïcödé. ", 800)
		for i := range 30 {
			m.Fields = append(m.Fields, notify.Field{Key: fmt.Sprintf("host-%02d", i), Value: strings.Repeat("x", 3000)})
		}
		if err := s.Notifier.Notify(t.Context(), m); err != nil {
			t.Fatalf("Notify: %v", err)
		}
		if got := only(t, s); !strings.Contains(got, m.URL) {
			t.Errorf("truncation lost the url:\n%.500s", got)
		}
	})
	t.Run("invalid message is permanent", func(t *testing.T) {
		s := tg.New(t, OK)
		m := Release()
		m.Title = " "
		err := s.Notifier.Notify(t.Context(), m)
		permanent(t, err)
		if n := len(s.Received()); n != 0 {
			t.Errorf("receiver got %d payloads for an invalid message", n)
		}
	})
	t.Run("cancelled context is retryable", func(t *testing.T) {
		s := tg.New(t, OK)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := s.Notifier.Notify(ctx, Release())
		retryable(t, err)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v does not wrap context.Canceled", err)
		}
		if n := len(s.Received()); n != 0 {
			t.Errorf("receiver got %d payloads after cancel", n)
		}
		noSecret(t, s, err)
	})
	for _, f := range tg.Faults {
		t.Run(string(f), func(t *testing.T) {
			s := tg.New(t, f)
			start := time.Now()
			err := s.Notifier.Notify(t.Context(), Release())
			elapsed := time.Since(start)
			switch f {
			case RateLimited:
				after := retryable(t, err)
				if after != RetryAfterSeconds*time.Second {
					t.Errorf("retry after %s, want %ds", after, RetryAfterSeconds)
				}
			case ServerError, Down:
				retryable(t, err)
			case Slow:
				retryable(t, err)
				if elapsed > slowBound {
					t.Errorf("Notify took %s against a slow receiver, want < %s", elapsed, slowBound)
				}
			case Rejected:
				permanent(t, err)
			default:
				t.Fatalf("unknown fault %q", f)
			}
			noSecret(t, s, err)
		})
	}
}

func only(t *testing.T, s Setup) string {
	t.Helper()
	got := s.Received()
	if len(got) != 1 {
		t.Fatalf("receiver got %d payloads, want 1", len(got))
	}
	return got[0]
}

func retryable(t *testing.T, err error) time.Duration {
	t.Helper()
	if err == nil {
		t.Fatal("Notify succeeded, want a retryable error")
	}
	after, ok := notify.RetryAfter(err)
	if !ok {
		t.Fatalf("error %q is permanent, want retryable", err)
	}
	return after
}

func permanent(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("Notify succeeded, want a permanent error")
	}
	if _, ok := notify.RetryAfter(err); ok {
		t.Fatalf("error %q is retryable, want permanent", err)
	}
	if err.Error() == "" {
		t.Error("empty error message")
	}
}

// noSecret checks err and every printed form of the notifier.
func noSecret(t *testing.T, s Setup, err error) {
	t.Helper()
	var texts []string
	if err != nil {
		texts = append(texts, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
	}
	texts = append(texts, fmt.Sprintf("%v|%+v|%#v|%s", s.Notifier, s.Notifier, s.Notifier, s.Notifier))
	for _, secret := range s.Secrets {
		for _, text := range texts {
			if strings.Contains(text, secret) {
				t.Errorf("secret %q leaked: %s", secret, text)
			}
		}
	}
}

// Outbox returns a typical envelope of every outbox kind, as its producer queues it. A
// kind in notify.OutboxKinds without one here fails the renderer tests.
func Outbox() map[string]notify.Envelope {
	rel := Release()
	exposure := notify.Message{Kind: notify.KindExposure, Title: "proxy-1 is exposed to 1 advisories", Severity: notify.SeverityWarning,
		Fields: []notify.Field{{Key: "Host", Value: "proxy-1"}}}
	op := func(kind, op string) notify.Envelope {
		o := &notify.Operation{Host: "proxy-1", Op: "20261202T120000-0a1b2c3d", Operation: op,
			From: "0.4.1-0123456789ab", FromVersion: "0.4.1", To: "0.5.0-ba9876543210", ToVersion: "0.5.0",
			Step: "smoke", Error: "smoke test failed: stats 127.0.0.1:22222 reports 0.4.1, want 0.5.0", By: "uid 1000 (alice)"}
		if kind == notify.OutboxDeployRollbackFailed {
			o.RollbackStep, o.RollbackError = "rollback-restart", "nutcracker exited at start: bind 127.0.0.1:22121: address in use"
		}
		if kind == notify.OutboxDeployFailed {
			o.From, o.FromVersion = "", ""
		}
		return notify.Envelope{Kind: kind, Operation: o}
	}
	out := map[string]notify.Envelope{
		notify.OutboxReleaseNew: {Kind: notify.OutboxReleaseNew, Release: &store.Release{Source: "twitter/twemproxy", Tag: rel.Version,
			Version: rel.Version, PublishedAt: rel.Date, URL: rel.URL, Notes: rel.Summary}},
		notify.OutboxAdvisoryNew: {Kind: notify.OutboxAdvisoryNew, Advisory: &store.Advisory{Source: "twitter/twemproxy", ID: "GHSA-xxxx-yyyy-zzzz",
			Summary: "crash on a malformed reply", Severity: "high", PatchedVersion: "0.5.1"}},
		notify.OutboxTrackingStart:           {Kind: notify.OutboxTrackingStart, Source: "twitter/twemproxy", Count: 15, Security: 2},
		notify.OutboxInventoryExposed:        {Kind: notify.OutboxInventoryExposed, Message: &exposure},
		notify.OutboxInventoryVersionChanged: {Kind: notify.OutboxInventoryVersionChanged, Message: &exposure},
		notify.OutboxInventoryStopped:        {Kind: notify.OutboxInventoryStopped, Message: &exposure},
		notify.OutboxInventoryCameBack:       {Kind: notify.OutboxInventoryCameBack, Message: &exposure},
		notify.OutboxDeployFailed:            op(notify.OutboxDeployFailed, "deploy"),
		notify.OutboxDeployRolledBack:        op(notify.OutboxDeployRolledBack, "deploy"),
		notify.OutboxDeployRollbackFailed:    op(notify.OutboxDeployRollbackFailed, "deploy"),
		notify.OutboxRollbackFailed:          op(notify.OutboxRollbackFailed, "rollback"),
		notify.OutboxWindowReminder:          windowMsg(notify.OutboxWindowReminder, "patch window staging (staging) opens 2026-02-10 02:00 CET: start 0.5.0"),
		notify.OutboxWindowStart:             windowMsg(notify.OutboxWindowStart, "patch window staging (staging) opened: start"),
		notify.OutboxWindowEnd:               windowMsg(notify.OutboxWindowEnd, "patch window staging (staging) closed"),
		notify.OutboxPatchStarted:            windowMsg(notify.OutboxPatchStarted, "patch window nightly: rollout r1 of nutcracker 0.5.0 started (staging)"),
		notify.OutboxPatchBad:                windowMsg(notify.OutboxPatchBad, "nutcracker 0.5.0 marked bad: rollout r1 aborted"),
	}
	for _, kind := range notify.RolloutEvents {
		out[kind] = RolloutEnvelope(kind)
	}
	return out
}

// RolloutEnvelope is a typical note of a rollout event, as package waves queues it.
func RolloutEnvelope(kind string) notify.Envelope {
	n := &notify.RolloutNote{ID: "r20261202-120000-0a1b2c", Version: "0.5.0", Policy: "default", Wave: "production"}
	switch kind {
	case notify.RolloutStarted:
		n.Wave = ""
		n.Waves = []notify.RolloutWaveNote{{Name: "staging", Hosts: 1}, {Name: "production", Hosts: 4}}
	case notify.RolloutHostFailed:
		n.Host, n.Reason = "proxy-3", "proxy-3: smoke test failed: pool r: connection refused"
	case notify.RolloutWaveFailed, notify.RolloutPaused, notify.RolloutAborting, notify.RolloutFailed:
		n.Reason = "wave production failed: soak gate: server_err rose by 12 (allowed 0: proxy-3 +12)"
	}
	return notify.Envelope{Kind: kind, Rollout: n, Thread: "rollout:" + n.ID}
}

// windowMsg is a patch scheduler message as the scheduler builds it.
func windowMsg(kind, title string) notify.Envelope {
	return notify.Envelope{Kind: kind, Message: &notify.Message{Kind: notify.KindWindow, Title: title, Severity: notify.SeverityInfo,
		Version: "0.5.0", Summary: "4 hosts run an older version: proxy-1, proxy-2, proxy-3, proxy-4.",
		Fields: []notify.Field{{Key: "Fast-tracked because", Value: "fixes CVE-2026-0001 (high, 4 hosts)"}}}}
}

// MustSay lists what the rendered alert of an outbox envelope must contain: for a deploy
// or rollback outcome the host, both versions, the failed step and the cause; for a ready
// message its title, summary and every field (a fast-tracked rollout says why).
func MustSay(e notify.Envelope) []string {
	if r := e.Rollout; r != nil {
		// Webhook messages cannot thread: each names its rollout.
		say := []string{r.ID, r.Version, r.Wave, r.Host, r.Reason}
		for _, w := range r.Waves {
			say = append(say, w.Name)
		}
		return slices.DeleteFunc(say, func(s string) bool { return s == "" })
	}
	if m := e.Message; m != nil {
		say := []string{m.Title, m.Summary}
		for _, f := range m.Fields {
			say = append(say, f.Key, f.Value)
		}
		return say
	}
	if e.Operation == nil {
		return nil
	}
	o := e.Operation
	say := []string{o.Host, o.ToVersion, o.Step, o.Error, o.By}
	if o.FromVersion != "" {
		say = append(say, o.FromVersion)
	}
	if o.RollbackError != "" {
		say = append(say, o.RollbackStep, o.RollbackError)
	}
	return say
}
