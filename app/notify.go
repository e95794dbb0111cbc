package app

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/notify/slack"
	"github.com/patchctl/patchctl/store"
)

// newNotifier picks the configured channel: a Slack webhook, a Slack bot, or the log.
func (a *App) newNotifier() (notify.Notifier, string, error) {
	s := a.cfg.Slack
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
	n, desc, err := a.newNotifier()
	if err != nil {
		return fmt.Errorf("slack: %w", err)
	}
	if a.notifier != nil { // set by Options, e.g. the demo's console
		n, desc = a.notifier, "custom"
	}
	a.notifier = n
	a.kick = make(chan struct{}, 1)
	d := &notify.Dispatcher{
		Store: a.store, Notifier: n, Logger: a.log.With("component", "outbox"),
		MaxAttempts: a.cfg.Notify.MaxAttempts, MinBackoff: a.cfg.Notify.MinBackoff,
		MaxBackoff: a.cfg.Notify.MaxBackoff, Now: a.now,
	}
	a.addLoop(func(ctx context.Context) { d.Run(ctx, a.cfg.Notify.Interval, a.kick) })
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

// wake asks the dispatcher to look at the outbox now (after a poll enqueued alerts).
func (a *App) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}
