package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/patchctl/patchctl/store"
)

// Dispatcher delivers the store's outbox through a Notifier: one message at a time
// (Slack accepts about one a second per channel), retrying failures worth retrying with
// exponential backoff and Retry-After, and recording every outcome in the store, so a
// message survives restarts and is sent once. A crash between Slack's answer and the
// store's commit can resend one message: delivery is at least once in that window.
type Dispatcher struct {
	Store       *store.Store
	Notifier    Notifier
	Logger      *slog.Logger
	MaxAttempts int
	MinBackoff  time.Duration
	MaxBackoff  time.Duration
	Now         func() time.Time

	mu      sync.Mutex // guards the settings above against Configure
	flushMu sync.Mutex // one pass at a time
}

// Configure changes a running dispatcher's settings (a reload): fn sets the exported
// fields. The pass in progress finishes with the old ones.
func (d *Dispatcher) Configure(fn func(d *Dispatcher)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn(d)
}

// settings is a consistent copy of the exported fields for one pass.
func (d *Dispatcher) settings() *Dispatcher {
	d.mu.Lock()
	defer d.mu.Unlock()
	return &Dispatcher{Store: d.Store, Notifier: d.Notifier, Logger: d.Logger, MaxAttempts: d.MaxAttempts,
		MinBackoff: d.MinBackoff, MaxBackoff: d.MaxBackoff, Now: d.Now}
}

// FlushResult counts what one pass did.
type FlushResult struct {
	Sent, Retrying, GaveUp int
}

// Flush tries every due message once, oldest first. A rate limit ends the pass early:
// the rest would only be refused too.
func (d *Dispatcher) Flush(ctx context.Context) (FlushResult, error) {
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	return d.settings().flush(ctx)
}

func (d *Dispatcher) flush(ctx context.Context) (FlushResult, error) {
	var res FlushResult
	items, err := d.Store.Outbox(ctx, true)
	if err != nil {
		return res, err
	}
	now := d.now()
	for _, it := range items {
		if it.NextAttempt.After(now) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		limited, err := d.deliver(ctx, it, &res)
		if err != nil {
			return res, err
		}
		if limited {
			break
		}
	}
	return res, nil
}

// deliver sends one item and records the outcome; it reports whether Slack rate-limited us.
func (d *Dispatcher) deliver(ctx context.Context, it store.OutboxItem, res *FlushResult) (bool, error) {
	msg, err := Render(it.Payload)
	if err == nil {
		err = d.Notifier.Notify(ctx, msg)
	}
	now := d.now()
	it.Attempts++
	ev := store.Event{Subject: it.Key, Fields: map[string]string{"attempt": fmt.Sprint(it.Attempts)}}
	retryAfter, retryable := RetryAfter(err)
	limited := false
	switch {
	case err == nil:
		it.SentAt, it.LastError = now, ""
		ev.Kind, ev.Message = "notify.sent", msg.Headline()
		res.Sent++
	case retryable && it.Attempts < d.MaxAttempts:
		wait := max(retryAfter, d.backoff(it.Attempts))
		it.NextAttempt, it.LastError = now.Add(wait), err.Error()
		ev.Kind, ev.Message = "notify.retry", fmt.Sprintf("delivery failed, retrying in %s: %v", wait.Round(time.Second), err)
		limited = retryAfter > 0
		res.Retrying++
	default:
		it.GaveUpAt, it.LastError = now, err.Error()
		ev.Kind, ev.Message = "notify.gave_up", fmt.Sprintf("delivery abandoned after %d attempts: %v", it.Attempts, err)
		res.GaveUp++
	}
	if err != nil {
		d.logger().Warn("notification not delivered", "key", it.Key, "attempt", it.Attempts, "err", err)
	}
	// The outcome is recorded even when ctx was cancelled during the send.
	werr := d.Store.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error {
		if err := tx.PutOutboxItem(it); err != nil {
			return err
		}
		_, err := tx.AppendEvent(ev)
		return err
	})
	return limited, werr
}

// backoff is exponential from MinBackoff, capped at MaxBackoff, with ±20% jitter.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	b := d.MinBackoff
	for i := 1; i < attempt && b < d.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, d.MaxBackoff)
	return b - b/5 + rand.N(b/5*2+1)
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

func (d *Dispatcher) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.New(slog.DiscardHandler)
}
