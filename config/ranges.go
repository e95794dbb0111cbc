package config

import "time"

// validateRanges puts an upper bound on every numeric setting whose lower bound validate
// checks: a value beyond it is a typo (a unit too large, `concurrency: 1e8`) that would
// exhaust memory or make the daemon wait for ever.
func (c *Config) validateRanges(fail func(field, format string, args ...any)) {
	durations := []struct {
		field string
		v     time.Duration
		max   time.Duration
	}{
		{"github.timeout", c.GitHub.Timeout, time.Hour},
		{"slack.timeout", c.Slack.Timeout, time.Hour},
		{"tracker.jitter", c.Tracker.Jitter, 24 * time.Hour},
		{"notify.min_backoff", c.Notify.MinBackoff, 7 * 24 * time.Hour},
		{"notify.max_backoff", c.Notify.MaxBackoff, 7 * 24 * time.Hour},
		{"notify.interval", c.Notify.Interval, time.Hour},
		{"inventory.stats_timeout", c.Inventory.StatsTimeout, 10 * time.Minute},
		{"shutdown_timeout", c.Shutdown, time.Hour},
	}
	for _, d := range durations {
		if d.v > d.max {
			fail(d.field, "%v is more than the maximum %v", d.v, d.max)
		}
	}
	ints := []struct {
		field string
		v     int
		max   int
	}{
		{"notify.max_attempts", c.Notify.MaxAttempts, 10_000},
		{"inventory.concurrency", c.Inventory.Concurrency, 4096},
	}
	for _, n := range ints {
		if n.v > n.max {
			fail(n.field, "%d is more than the maximum %d", n.v, n.max)
		}
	}
}
