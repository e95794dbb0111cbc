package app

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchctl/patchctl/config"
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
	a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "patchctl_outbox_pending", Help: "Notifications waiting in the outbox.",
	}, func() float64 {
		items, _ := a.store.Outbox(context.Background(), true)
		return float64(len(items))
	}))

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
