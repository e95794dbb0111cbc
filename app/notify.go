package app

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/internal/metrics"
	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/notify/slack"
	"github.com/patchctl/patchctl/store"
)

// newNotifier picks the configured channel: a Slack webhook, a Slack bot, or the log;
// Options.Notifier (the demo's console) overrides them.
func (a *App) newNotifier(cfg *config.Config) (notify.Notifier, string, error) {
	if a.notifier != nil {
		return a.notifier, "custom", nil
	}
	s := cfg.Slack
	opts := []slack.Option{slack.WithTimeout(s.Timeout), slack.WithLogger(a.log)}
	switch {
	case s.WebhookURL != "":
		n, err := slack.NewWebhook(s.WebhookURL.Value(), opts...)
		return n, "slack webhook", err
	case s.Token != "":
		n, err := slack.NewBot(s.Token.Value(), s.Channel, append(opts, slack.WithAPIURL(s.APIURL))...)
		return n, "slack bot, channel " + s.Channel, err
	}
	return notify.NewLog(a.log), "log", nil
}

func setupNotify(_ context.Context, a *App) error {
	cfg := a.config()
	n, desc, err := a.newNotifier(cfg)
	if err != nil {
		return fmt.Errorf("slack: %w", err)
	}
	var channel atomic.Pointer[notifierDesc]
	channel.Store(&notifierDesc{n, desc})
	a.kick = make(chan struct{}, 1)
	d := &notify.Dispatcher{Store: a.store, Logger: a.log.With("component", "outbox"), Now: a.now}
	configure := func(cfg *config.Config, n notify.Notifier) func(d *notify.Dispatcher) {
		return func(d *notify.Dispatcher) {
			d.Notifier, d.MaxAttempts = n, cfg.Notify.MaxAttempts
			d.MinBackoff, d.MaxBackoff = cfg.Notify.MinBackoff, cfg.Notify.MaxBackoff
			d.Gap, d.DigestAfter = cfg.Notify.MinGap, cfg.Notify.DigestAfter
		}
	}
	d.Configure(configure(cfg, n))
	a.addReloader(func(_ context.Context, cfg *config.Config) (func(), error) {
		n, desc, err := a.newNotifier(cfg)
		if err != nil {
			return nil, fmt.Errorf("slack: %w", err)
		}
		return func() {
			channel.Store(&notifierDesc{n, desc})
			d.Configure(configure(cfg, n))
		}, nil
	})
	a.addLoop(func(ctx context.Context) {
		d.Run(ctx, func() time.Duration { return a.config().Notify.Interval }, a.kick)
	})
	// Scrapes count index keys: they decode no outbox item.
	outboxCount := func(undelivered bool) func() float64 {
		return func() float64 {
			var p, u int
			a.store.View(context.Background(), func(tx *store.Tx) (err error) {
				p, u, err = tx.OutboxCounts()
				return err
			})
			if undelivered {
				return float64(u)
			}
			return float64(p)
		}
	}
	a.reg.MustRegister(
		metrics.NewGaugeFunc("patchctl_outbox_pending", "Notifications waiting in the outbox.", outboxCount(false)),
		metrics.NewGaugeFunc("patchctl_outbox_undelivered",
			"Notifications given up on (max_attempts or a permanent refusal); patchctl notify retry sends them again.", outboxCount(true)),
	)

	handle(a, "notify.retry", func(ctx context.Context, args RetryArgs) (any, error) {
		if (args.ID == 0) == !args.All {
			return nil, &Error{Kind: KindUsage, Msg: "give one alert ID or --all"}
		}
		var res RetryResult
		err := a.store.Update(ctx, func(tx *store.Tx) error {
			ids := []uint64{args.ID}
			if args.All {
				items, err := tx.Undelivered()
				if err != nil {
					return err
				}
				ids = ids[:0]
				for _, it := range items {
					ids = append(ids, it.ID)
				}
			}
			for _, id := range ids {
				ok, err := tx.Retry(id)
				if err != nil {
					return err
				}
				if !ok {
					return &Error{Kind: KindUsage, Msg: fmt.Sprintf("alert %d is not undelivered (see patchctl status)", id)}
				}
				if _, err := tx.AppendEvent(store.Event{Kind: "notify.requeued", Subject: fmt.Sprint(id), Message: "undelivered alert queued again"}); err != nil {
					return err
				}
				res.Requeued = append(res.Requeued, id)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if res.Requeued == nil {
			res.Requeued = []uint64{}
		}
		a.wake()
		return res, nil
	})

	handle(a, "notify.test", func(ctx context.Context, _ struct{}) (any, error) {
		msg := notify.Message{
			Kind: notify.KindTest, Title: "patchctl test message",
			Summary:  "If you can read this, patchctl's alerts reach this channel.",
			Severity: notify.SeverityInfo, Date: a.now(),
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		ch := channel.Load()
		n, desc := ch.n, ch.desc
		err := n.Notify(ctx, msg)
		ev := store.Event{Kind: "notify.test", Subject: desc, Message: "test message delivered"}
		if err != nil {
			ev.Message = "test message failed: " + err.Error()
		}
		if werr := a.store.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error {
			_, err := tx.AppendEvent(ev)
			return err
		}); werr != nil {
			return nil, werr
		}
		if err != nil {
			return nil, &Error{Kind: KindFailed, Msg: fmt.Sprintf("%s: %v", desc, err)}
		}
		return map[string]string{"channel": desc, "result": "delivered"}, nil
	})
	return nil
}

// RetryArgs name the undelivered alerts to send again: one ID, or all.
type RetryArgs struct {
	ID  uint64 `json:"id,omitempty"`
	All bool   `json:"all,omitempty"`
}

// RetryResult lists the alerts queued again.
type RetryResult struct {
	Requeued []uint64 `json:"requeued"`
}

// notifierDesc is the alert channel in force and how `notify test` names it.
type notifierDesc struct {
	n    notify.Notifier
	desc string
}

// wake asks the dispatcher to look at the outbox now (after a poll enqueued alerts).
func (a *App) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}
