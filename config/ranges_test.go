package config_test

import (
	"strings"
	"testing"

	"github.com/patchctl/patchctl/config"
)

// TestRanges: every numeric setting out of range is refused with its file, line and field.
func TestRanges(t *testing.T) {
	tests := []struct {
		yaml string
		want string
	}{
		{"inventory:\n  concurrency: 1e8\n", "f.yml:3: inventory.concurrency: 100000000 is more than the maximum 4096"},
		{"inventory:\n  concurrency: 0\n", "f.yml:3: inventory.concurrency: must be at least 1"},
		{"inventory:\n  stats_timeout: 1h\n", "f.yml:3: inventory.stats_timeout: 1h0m0s is more than the maximum 10m0s"},
		{"inventory:\n  schedule: '@every 30s'\n", `f.yml:3: inventory.schedule: schedule "@every 30s" runs more often than every 1m0s`},
		{"tracker:\n  schedule: '@every 1s'\n", `f.yml:3: tracker.schedule: schedule "@every 1s" runs more often than every 1m0s`},
		{"tracker:\n  jitter: -1s\n", "f.yml:3: tracker.jitter: must not be negative"},
		{"tracker:\n  jitter: 48h\n", "f.yml:3: tracker.jitter: 48h0m0s is more than the maximum 24h0m0s"},
		{"github:\n  timeout: -5s\n", "f.yml:3: github.timeout: must be positive"},
		{"github:\n  timeout: 2h\n", "f.yml:3: github.timeout: 2h0m0s is more than the maximum 1h0m0s"},
		{"slack:\n  timeout: 5h\n", "f.yml:3: slack.timeout: 5h0m0s is more than the maximum 1h0m0s"},
		{"notify:\n  max_attempts: 1000000\n", "f.yml:3: notify.max_attempts: 1000000 is more than the maximum 10000"},
		{"notify:\n  interval: 2h\n", "f.yml:3: notify.interval: 2h0m0s is more than the maximum 1h0m0s"},
		{"shutdown_timeout: 1000h\n", "f.yml:2: shutdown_timeout: 1000h0m0s is more than the maximum 1h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := config.Parse("f.yml", strings.NewReader("data_dir: /nonexistent\n"+tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// The bounds themselves are accepted.
	ok := "data_dir: /nonexistent\ninventory:\n  concurrency: 4096\n  schedule: '@every 1m'\nshutdown_timeout: 1h\n"
	if _, err := config.Parse("f.yml", strings.NewReader(ok)); err != nil {
		t.Fatalf("at the bounds: %v", err)
	}
}
