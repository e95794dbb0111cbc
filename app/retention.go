package app

import (
	"context"
	"fmt"

	"github.com/patchctl/patchctl/internal/metrics"
	"github.com/patchctl/patchctl/store"
)

// setupRetention prunes what only grows (events, delivered alerts, stale HTTP cache
// entries) hourly and at start, and reports the store's size.
func setupRetention(_ context.Context, a *App) error {
	pruned := metrics.NewCounterVec("patchctl_pruned_total",
		"Records deleted by retention, by kind (events, delivered_alerts, http_cache).", "kind")
	a.reg.MustRegister(pruned, metrics.NewGaugeFunc("patchctl_store_bytes", "Size of the store file.", func() float64 {
		n, _ := a.store.Size(context.Background())
		return float64(n)
	}))
	a.addJob(job{name: "retention", schedule: "@hourly", atStart: true, run: func(ctx context.Context) error {
		_, err := a.prune(ctx, pruned)
		return err
	}})
	return nil
}

// prune applies the configured retention once and records what it deleted.
func (a *App) prune(ctx context.Context, pruned *metrics.CounterVec) (store.Pruned, error) {
	r := a.config().Retention
	p, err := a.store.Prune(ctx, store.Retention{Events: r.Events, Delivered: r.Delivered, HTTPCache: r.HTTPCache})
	if err != nil {
		return p, fmt.Errorf("retention: %w", err)
	}
	pruned.WithLabelValues("events").Add(float64(p.Events))
	pruned.WithLabelValues("delivered_alerts").Add(float64(p.Delivered))
	pruned.WithLabelValues("http_cache").Add(float64(p.HTTPCache))
	if p != (store.Pruned{}) {
		a.log.Info("retention pruned the store", "events", p.Events, "delivered_alerts", p.Delivered, "http_cache", p.HTTPCache)
	}
	return p, nil
}
