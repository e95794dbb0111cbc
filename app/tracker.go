package app

import (
	"context"
	"sort"
	"sync/atomic"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/tracker"
)

// ReleaseList is what `patchctl releases` shows.
type ReleaseList struct {
	Releases []store.Release          `json:"releases"` // newest version first
	Latest   map[string]store.Release `json:"latest"`   // per source
}

// ReleasesArgs filter the list.
type ReleasesArgs struct {
	Source string `json:"source,omitempty"`
}

func setupTracker(_ context.Context, a *App) error {
	m := tracker.NewMetrics(a.reg)
	build := func(cfg *config.Config) (*tracker.Tracker, error) {
		watches, err := tracker.Watches(cfg, a.store, m, a.log.With("component", "tracker"))
		if err != nil {
			return nil, err
		}
		return tracker.New(a.store, watches, tracker.Options{
			Keywords: cfg.Tracker.SecurityKeywords, Logger: a.log.With("component", "tracker"), Metrics: m, Now: a.now}), nil
	}
	cfg := a.config()
	first, err := build(cfg)
	if err != nil {
		return err
	}
	var current atomic.Pointer[tracker.Tracker]
	current.Store(first)
	a.addReloader(func(_ context.Context, cfg *config.Config) (func(), error) {
		t, err := build(cfg)
		if err != nil {
			return nil, err
		}
		return func() {
			current.Store(t)
			a.setSchedule("poll", cfg.Tracker.Schedule, cfg.Tracker.Jitter)
		}, nil
	})
	// A poll asked for on the CLI waits for a scheduled one that is running, rather than
	// overlapping it, and gives up when its caller or the daemon stops.
	sem := make(chan struct{}, 1)
	poll := func(ctx context.Context) (tracker.Report, error) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return tracker.Report{}, ctx.Err()
		}
		defer func() { <-sem }()
		rep, err := current.Load().Poll(ctx)
		a.wake()
		return rep, err
	}
	a.addJob(job{name: "poll", schedule: cfg.Tracker.Schedule, jitter: cfg.Tracker.Jitter, atStart: true, run: func(ctx context.Context) error {
		_, err := poll(ctx)
		return err
	}})
	// The report says per source what failed; the CLI turns failed sources into exit 1.
	handle(a, "poll", func(ctx context.Context, _ struct{}) (any, error) {
		rep, _ := poll(ctx)
		return rep, ctx.Err()
	})
	handle(a, "releases", func(ctx context.Context, args ReleasesArgs) (any, error) {
		list := ReleaseList{Latest: map[string]store.Release{}}
		err := a.store.View(ctx, func(tx *store.Tx) (err error) {
			list.Releases, err = tx.Releases(args.Source)
			return err
		})
		if err != nil {
			return nil, err
		}
		tracker.SortReleases(list.Releases)
		for _, src := range a.config().Tracker.Sources {
			var mine []store.Release
			for _, r := range list.Releases {
				if r.Source == src.Name() {
					mine = append(mine, r)
				}
			}
			if l, ok := tracker.Latest(mine, src.Prereleases); ok {
				list.Latest[src.Name()] = l
			}
		}
		return list, nil
	})
	handle(a, "advisories", func(ctx context.Context, args ReleasesArgs) (any, error) {
		var advs []store.Advisory
		err := a.store.View(ctx, func(tx *store.Tx) (err error) {
			advs, err = tx.Advisories(args.Source)
			return err
		})
		sort.SliceStable(advs, func(i, j int) bool { return advs[i].PublishedAt.After(advs[j].PublishedAt) })
		return advs, err
	})
	return nil
}
