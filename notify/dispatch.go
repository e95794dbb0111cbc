package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/patchctl/patchctl/store"
)

// Dispatcher delivers the store's outbox through a Notifier: one message at a time, at
// most one per Gap (Slack accepts about one a second per channel), a burst of due alerts
// as one digest, retrying failures worth retrying with exponential backoff and Retry-After,
// and recording every outcome in the store, so a message survives restarts and is sent
// once. A crash between Slack's answer and the store's commit can resend one message:
// delivery is at least once in that window.
type Dispatcher struct {
	Store       *store.Store
	Notifier    Notifier
	Logger      *slog.Logger
	MaxAttempts int
	MinBackoff  time.Duration
	MaxBackoff  time.Duration
	// Gap is the least time between two messages; 0 sends back to back.
	Gap time.Duration
	// DigestAfter: when more alerts than this are due at once (a mirror reset, a new
	// source), they go out as one digest message; 0 never digests.
	DigestAfter int
	Now         func() time.Time
	// Sleep waits for d or until ctx ends (default: a timer). Tests with a fake clock
	// replace it.
	Sleep func(ctx context.Context, d time.Duration) error

	mu      sync.Mutex // guards the settings above against Configure
	flushMu sync.Mutex // one pass at a time; guards what follows
	hold    time.Time  // the receiver asked for nothing before this (Retry-After)
	last    time.Time  // when the last message went out
}

// Configure changes a running dispatcher's settings (a reload): fn sets the exported
// fields. The pass in progress finishes with the old ones.
func (d *Dispatcher) Configure(fn func(d *Dispatcher)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn(d)
}

// pass is one flush with a consistent copy of the settings.
type pass struct {
	Dispatcher // settings only
	d          *Dispatcher
}

func (d *Dispatcher) pass() *pass {
	d.mu.Lock()
	defer d.mu.Unlock()
	return &pass{Dispatcher: Dispatcher{Store: d.Store, Notifier: d.Notifier, Logger: d.Logger, MaxAttempts: d.MaxAttempts,
		MinBackoff: d.MinBackoff, MaxBackoff: d.MaxBackoff, Gap: d.Gap, DigestAfter: d.DigestAfter, Now: d.Now, Sleep: d.Sleep}, d: d}
}

// FlushResult counts what one pass did; a digest counts every alert it carried.
type FlushResult struct {
	Sent, Retrying, GaveUp int
	Digests                int // digest messages sent
}

// Flush tries every due message once, oldest first, or all of them as one digest when
// more than DigestAfter are due. A rate limit ends the pass early and holds every message
// back for as long as the receiver asked: the rest would only be refused too.
func (d *Dispatcher) Flush(ctx context.Context) (FlushResult, error) {
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	return d.pass().flush(ctx)
}

func (p *pass) flush(ctx context.Context) (FlushResult, error) {
	var res FlushResult
	if p.now().Before(p.d.hold) {
		return res, nil
	}
	items, err := p.Store.Outbox(ctx, true)
	if err != nil {
		return res, err
	}
	now := p.now()
	due := items[:0]
	// A thread whose earlier message still waits holds its later ones back, so a reply
	// never comes before the message it replies to.
	held := map[string]bool{}
	for _, it := range items {
		if !it.NextAttempt.After(now) {
			due = append(due, it)
		} else if t := threadOf(it.Payload); t != "" {
			held[t] = true
		}
	}
	if p.DigestAfter > 0 && len(due) > p.DigestAfter {
		return res, p.digest(ctx, due, &res)
	}
	for _, it := range due {
		thread := threadOf(it.Payload)
		if held[thread] {
			continue
		}
		if err := p.pace(ctx); err != nil {
			return res, err
		}
		msg, err := Render(it.Payload)
		started := threadRef{key: thread}
		if err == nil {
			started.ref, err = p.send(ctx, thread, msg)
		}
		limited, werr := p.record(ctx, []store.OutboxItem{it}, msg.Headline(), err, &res, started)
		if werr != nil {
			return res, werr
		}
		if err != nil && thread != "" {
			held[thread] = true
		}
		if limited {
			break
		}
	}
	return res, nil
}

// Threader is a Notifier that can reply in a thread (a Slack bot). PostThreaded posts m
// as a reply to parent, a reference it returned before, or as a new message when parent
// is ""; it returns the reference of the message it posted.
type Threader interface {
	Notifier
	PostThreaded(ctx context.Context, m Message, parent string) (ref string, err error)
}

// threadRef is where the first message of a thread was posted.
type threadRef struct{ key, ref string }

func threadOf(payload []byte) string {
	var e struct {
		Thread string `json:"thread"`
	}
	_ = json.Unmarshal(payload, &e)
	return e.Thread
}

// send delivers one message, in its thread when it has one and the notifier threads; it
// returns the reference of a thread it started.
func (p *pass) send(ctx context.Context, thread string, msg Message) (string, error) {
	t, ok := p.Notifier.(Threader)
	if !ok || thread == "" {
		return "", p.Notifier.Notify(ctx, msg)
	}
	var parent string
	if err := p.Store.View(ctx, func(tx *store.Tx) (err error) {
		parent, err = tx.Thread(thread)
		return err
	}); err != nil {
		return "", err
	}
	ref, err := t.PostThreaded(ctx, msg, parent)
	if err != nil || parent != "" {
		return "", err
	}
	return ref, nil
}

// pace waits until Gap has passed since the last message.
func (p *pass) pace(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.d.last.IsZero() || p.Gap <= 0 {
		return nil
	}
	if wait := p.d.last.Add(p.Gap).Sub(p.now()); wait > 0 {
		return p.sleep(ctx, wait)
	}
	return nil
}

// digest sends the due items as one message: the headlines, security-relevant first, up
// to what a reader takes in; `patchctl events` has every one. Items that cannot render
// are abandoned on their own.
func (p *pass) digest(ctx context.Context, due []store.OutboxItem, res *FlushResult) error {
	var items []store.OutboxItem
	var msgs []Message
	for _, it := range due {
		msg, err := Render(it.Payload)
		if err != nil {
			if _, werr := p.record(ctx, []store.OutboxItem{it}, "", err, res, threadRef{}); werr != nil {
				return werr
			}
			continue
		}
		items, msgs = append(items, it), append(msgs, msg)
	}
	if len(items) == 0 {
		return nil
	}
	if err := p.pace(ctx); err != nil {
		return err
	}
	m := Digest(msgs)
	err := p.Notifier.Notify(ctx, m)
	if err == nil {
		res.Digests++
	}
	_, werr := p.record(ctx, items, m.Headline(), err, res, threadRef{})
	return werr
}

// digestLines bounds the headlines listed in a digest.
const digestLines = 25

// Digest is one message standing for many: what they are, how many of each kind, the
// headlines (security-relevant first), and the highest severity among them.
func Digest(msgs []Message) Message {
	sorted := slices.Clone(msgs)
	slices.SortStableFunc(sorted, func(a, b Message) int {
		if a.Security != b.Security {
			if a.Security {
				return -1
			}
			return 1
		}
		return 0
	})
	m := Message{Kind: KindDigest, Severity: SeverityInfo, Title: fmt.Sprintf("%d alerts at once", len(msgs))}
	kinds := map[Kind]int{}
	security := 0
	for _, x := range msgs {
		kinds[x.Kind]++
		if x.Security {
			security++
			m.Security = true
		}
		if severityRank(x.Severity) > severityRank(m.Severity) {
			m.Severity = x.Severity
		}
		if m.Date.IsZero() || x.Date.After(m.Date) {
			m.Date = x.Date
		}
	}
	if security > 0 {
		m.Title = fmt.Sprintf("%d alerts at once, %d security-relevant", len(msgs), security)
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, string(k))
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(kinds[Kind(b)]-kinds[Kind(a)], strings.Compare(a, b)) })
	for _, k := range names {
		m.Fields = append(m.Fields, Field{Key: k, Value: fmt.Sprint(kinds[Kind(k)])})
	}
	var b strings.Builder
	for i, x := range sorted {
		if i == digestLines {
			fmt.Fprintf(&b, "… and %d more: `patchctl events` lists every one.\n", len(sorted)-i)
			break
		}
		fmt.Fprintf(&b, "- %s\n", x.Headline())
	}
	m.Summary = b.String()
	return m
}

func severityRank(s Severity) int {
	return slices.Index([]Severity{SeverityInfo, SeverityWarning, SeverityCritical}, s)
}

// record stores the outcome of one delivery (of one message or of a digest of items),
// with the thread it started if any, and reports whether the receiver rate-limited us;
// the digest's items share its fate.
func (p *pass) record(ctx context.Context, items []store.OutboxItem, headline string, err error, res *FlushResult, started threadRef) (bool, error) {
	now := p.now()
	if !errors.Is(err, context.Canceled) {
		p.d.last = now
	}
	retryAfter, retryable := RetryAfter(err)
	limited := retryAfter > 0
	if limited {
		p.d.hold = now.Add(retryAfter)
	}
	if err != nil {
		p.logger().Warn("notification not delivered", "key", items[0].Key, "alerts", len(items), "attempt", items[0].Attempts+1, "err", err)
	}
	wait := max(retryAfter, p.backoff(items[0].Attempts+1))
	werr := p.Store.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error {
		if started.ref != "" {
			if err := tx.PutThread(started.key, started.ref); err != nil {
				return err
			}
		}
		for _, it := range items {
			it.Attempts++
			ev := store.Event{Subject: it.Key, Fields: map[string]string{"attempt": fmt.Sprint(it.Attempts)}}
			if len(items) > 1 {
				ev.Fields["digest"] = fmt.Sprint(len(items))
			}
			switch {
			case err == nil:
				it.SentAt, it.LastError = now, ""
				ev.Kind, ev.Message = "notify.sent", headline
				res.Sent++
			case retryable && it.Attempts < p.MaxAttempts:
				it.NextAttempt, it.LastError = now.Add(wait), err.Error()
				ev.Kind, ev.Message = "notify.retry", fmt.Sprintf("delivery failed, retrying in %s: %v", wait.Round(time.Second), err)
				res.Retrying++
			default:
				it.GaveUpAt, it.LastError = now, err.Error()
				ev.Kind, ev.Message = "notify.gave_up", fmt.Sprintf("delivery abandoned after %d attempts: %v; `patchctl notify retry %d` sends it again", it.Attempts, err, it.ID)
				res.GaveUp++
			}
			if err := tx.PutOutboxItem(it); err != nil {
				return err
			}
			if _, err := tx.AppendEvent(ev); err != nil {
				return err
			}
		}
		return nil
	})
	return limited, werr
}

// backoff is exponential from MinBackoff with ±20% jitter, never above MaxBackoff.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	b := d.MinBackoff
	for i := 1; i < attempt && b < d.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, d.MaxBackoff)
	return min(b-b/5+rand.N(b/5*2+1), d.MaxBackoff)
}

// Run flushes every interval(), and at once when kick receives, until ctx ends. The
// interval is asked each time: a reload may change it.
func (d *Dispatcher) Run(ctx context.Context, interval func() time.Duration, kick <-chan struct{}) {
	for {
		if _, err := d.Flush(ctx); err != nil && !errors.Is(err, context.Canceled) {
			d.logger().Error("outbox flush failed", "err", err)
		}
		t := time.NewTimer(interval())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-kick:
			t.Stop()
		}
	}
}

func (d *Dispatcher) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Dispatcher) sleep(ctx context.Context, wait time.Duration) error {
	if d.Sleep != nil {
		return d.Sleep(ctx, wait)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (d *Dispatcher) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.New(slog.DiscardHandler)
}
