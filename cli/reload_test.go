package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchctl/patchctl/cli"
)

// TestReloadCommandAndSIGHUP: the daemon re-reads patchctl.yml on SIGHUP and on
// `patchctl reload`; a bad file is refused with its line and changes nothing.
func TestReloadCommandAndSIGHUP(t *testing.T) {
	cfg := writeConfig(t, "tracker:\n  schedule: \"@every 1h\"\n  sources: [{repo: a/b, dir: .}]\n")
	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Without a daemon there is nothing to reload.
	if code, _, errOut := run(t, nil, "--config", cfg, "reload"); code != cli.ExitUnavailable || !strings.Contains(errOut, "no daemon") {
		t.Fatalf("reload without daemon: exit %d %s", code, errOut)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, []string{"--config", cfg, "daemon"}, cli.IO{Out: &strings.Builder{}, Err: &strings.Builder{}, Getenv: func(string) string { return "" }})
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("daemon did not stop")
		}
	}()
	// nextPoll is how long until the daemon's next scheduled poll (0 without a daemon).
	nextPoll := func() time.Duration {
		var st struct {
			NextRuns map[string]time.Time `json:"next_runs"`
		}
		_, out, _ := run(t, nil, "--config", cfg, "status", "-o", "json")
		if json.Unmarshal([]byte(out), &st) != nil || st.NextRuns["poll"].IsZero() {
			return 0
		}
		return time.Until(st.NextRuns["poll"])
	}
	waitFor := func(what string, cond func(next time.Duration) bool) {
		t.Helper()
		for start := time.Now(); time.Since(start) < time.Minute; time.Sleep(20 * time.Millisecond) {
			if cond(nextPoll()) {
				return
			}
		}
		t.Fatalf("timed out waiting for %s (next poll in %s)", what, nextPoll())
	}
	waitFor("the daemon", func(next time.Duration) bool { return next > 0 && next <= time.Hour })

	// A bad file: refused with its line, the schedule unchanged.
	os.WriteFile(cfg, append(append([]byte(nil), good...), "colour: blue\n"...), 0o600)
	code, _, errOut := run(t, nil, "--config", cfg, "reload")
	if code != cli.ExitUsage || !strings.Contains(errOut, `unknown key "colour"`) {
		// The CLI reads the file too: it refuses it itself, before asking the daemon.
		t.Fatalf("reload of a bad file: exit %d %s", code, errOut)
	}

	// SIGHUP with a good file that polls daily: the next poll moves.
	os.WriteFile(cfg, []byte(strings.Replace(string(good), "@every 1h", "@every 24h", 1)), 0o600)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("the new schedule after SIGHUP", func(next time.Duration) bool { return next > 2*time.Hour })

	// `patchctl reload` with the first file again.
	os.WriteFile(cfg, good, 0o600)
	if code, out, errOut := run(t, nil, "--config", cfg, "reload"); code != cli.ExitOK || !strings.Contains(out, "reloaded") {
		t.Fatalf("reload: exit %d %s%s", code, out, errOut)
	}
	if next := nextPoll(); next <= 0 || next > time.Hour {
		t.Fatalf("next poll in %s after reloading the hourly schedule", next)
	}
}

func TestNotifyRetryArgs(t *testing.T) {
	cfg := writeConfig(t, "")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, cli.ExitUsage, "give one alert ID or --all"},
		{[]string{"abc"}, cli.ExitUsage, `alert ID must be a positive number, not "abc"`},
		{[]string{"--all", "3"}, cli.ExitUsage, "give one alert ID or --all"},
		{[]string{"7"}, cli.ExitUsage, "alert 7 is not undelivered"},
		{[]string{"--all"}, cli.ExitOK, "0 alerts queued again"},
	} {
		code, out, errOut := run(t, nil, append([]string{"--config", cfg, "notify", "retry"}, c.args...)...)
		if code != c.code || !strings.Contains(out+errOut, c.want) {
			t.Errorf("notify retry %v: exit %d, want %d and %q:\n%s%s", c.args, code, c.code, c.want, out, errOut)
		}
	}
}
