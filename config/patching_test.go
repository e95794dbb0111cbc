package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/window"
)

func TestPatchingLoads(t *testing.T) {
	c, err := config.LoadFile(filepath.Join("testdata", "patching.yml"))
	if err != nil {
		t.Fatal(err)
	}
	ws := c.Windows()
	if len(ws) != 3 {
		t.Fatalf("%d windows", len(ws))
	}
	if ws[0].Policy != "monthly" || ws[0].Kind != window.Staging || len(ws[0].Blackouts) != 1 {
		t.Errorf("staging window = %+v", ws[0])
	}
	if ws[1].Recurrence.OffsetDays() != 2 || len(ws[1].Blackouts) != 2 {
		t.Errorf("production window = %+v", ws[1])
	}
	// 2 days after the second Tuesday of December 2026 is Thursday the 10th.
	o, ok := ws[1].Next(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if !ok || o.Open.Format(time.RFC3339) != "2026-12-10T02:00:00+01:00" {
		t.Errorf("next production window = %v", o.Open)
	}
	// The global year-end freeze blocks the nightly window too.
	o, _ = ws[2].Next(time.Date(2026, 12, 24, 12, 0, 0, 0, time.UTC))
	if !o.Blocked() {
		t.Errorf("nightly window on %v not blocked by the global freeze", o.Open)
	}
	pin, ok := c.Policy("pinned")
	if !ok || pin.Pin != "0.4.1" || pin.NeedsApproval() || pin.Source != "twitter/twemproxy" {
		t.Errorf("pinned policy = %+v", pin)
	}
	mon, _ := c.Policy("monthly")
	if !mon.NeedsApproval() || mon.MinReleaseAge != 168*time.Hour || mon.Security.Severity().String() != "high" || !mon.Security.Flagged {
		t.Errorf("monthly policy = %+v", mon)
	}
	if c.Patching.Reminder != 24*time.Hour {
		t.Errorf("reminder = %v", c.Patching.Reminder)
	}
}

func TestPatchingDefaults(t *testing.T) {
	c, err := config.Parse("empty.yml", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Windows()) != 0 {
		t.Errorf("default windows = %v", c.Windows())
	}
	p, ok := c.Policy("default")
	if !ok || p.MinReleaseAge != 72*time.Hour || !p.NeedsApproval() || p.Pin != "" || p.Prereleases {
		t.Errorf("default policy = %+v", p)
	}
}

func TestPatchingErrorsNameTheLine(t *testing.T) {
	const win = "patching:\n  windows:\n    - name: w\n      recurrence: %s\n      time_zone: %s\n      duration: %s\n      cutoff: %s\n      kind: staging\n"
	fill := func(rec, tz, dur, cut string) string {
		s := win
		for _, v := range []string{rec, tz, dur, cut} {
			s = strings.Replace(s, "%s", v, 1)
		}
		return s
	}
	cases := []struct {
		name, yaml, want string
	}{
		{"invalid recurrence", fill("'second funday at 02:00'", "UTC", "4h", "1h"), "bad.yml:4: patching.windows[0].recurrence: invalid recurrence"},
		{"cron with 4 fields", fill("'0 2 * *'", "UTC", "4h", "1h"), "bad.yml:4: patching.windows[0].recurrence: invalid recurrence"},
		{"unknown time zone", fill("'0 2 * * *'", "Mars/Olympus", "4h", "1h"), `bad.yml:5: patching.windows[0].time_zone: unknown time zone "Mars/Olympus"`},
		{"missing time zone", fill("'0 2 * * *'", "''", "4h", "1h"), "bad.yml:5: patching.windows[0].time_zone: is required"},
		{"cutoff longer than duration", fill("'0 2 * * *'", "UTC", "2h", "3h"), "bad.yml:7: patching.windows[0].cutoff: 3h0m0s leaves no time"},
		{"cutoff equal to duration", fill("'0 2 * * *'", "UTC", "2h", "2h"), "bad.yml:7: patching.windows[0].cutoff"},
		{"zero duration", fill("'0 2 * * *'", "UTC", "0s", "0s"), "bad.yml:6: patching.windows[0].duration: must be positive"},
		{"offset too large", fill("'second tuesday at 02:00'", "UTC", "4h", "1h") + "      offset_days: 40\n", "bad.yml:9: patching.windows[0].offset_days"},
		{"bad kind", strings.Replace(fill("'0 2 * * *'", "UTC", "4h", "1h"), "kind: staging", "kind: canary", 1), `bad.yml:8: patching.windows[0].kind: must be staging, production or security, not "canary"`},
		{"unknown policy", fill("'0 2 * * *'", "UTC", "4h", "1h") + "      policy: nope\n", `bad.yml:9: patching.windows[0].policy: "nope" is not one of patching.policies`},
		{"overlapping blackouts", fill("'0 2 * * *'", "UTC", "4h", "1h") + "      blackouts:\n        - {from: 2026-12-20, to: 2026-12-31}\n        - {from: 2026-12-31, to: 2027-01-02}\n",
			"bad.yml:11: patching.windows[0].blackouts[1]: 2026-12-31..2027-01-02 overlaps patching.windows[0].blackouts[0]"},
		{"window blackout overlapping a global one", "patching:\n  blackouts:\n    - {from: 2026-12-20, to: 2026-12-31}\n  windows:\n    - name: w\n      recurrence: '@daily'\n      time_zone: UTC\n      duration: 1h\n      kind: staging\n      blackouts:\n        - {from: 2026-12-24, to: 2026-12-24}\n",
			"bad.yml:11: patching.windows[0].blackouts[0]: 2026-12-24..2026-12-24 overlaps patching.blackouts"},
		{"overlapping global blackouts", "patching:\n  blackouts:\n    - {from: 2026-12-20, to: 2026-12-31}\n    - {from: 2026-12-01, to: 2026-12-20}\n", "bad.yml:4: patching.blackouts[1]: 2026-12-01..2026-12-20 overlaps"},
		{"blackout backwards", "patching:\n  blackouts:\n    - from: 2026-12-20\n      to: 2026-12-01\n", "bad.yml:4: patching.blackouts[0].to: 2026-12-01 is before from"},
		{"blackout bad date", "patching:\n  blackouts:\n    - from: 2026-13-01\n      to: 2026-12-01\n", `bad.yml:3: patching.blackouts[0].from: date must be YYYY-MM-DD, not "2026-13-01"`},
		{"duplicate window", fill("'0 2 * * *'", "UTC", "4h", "1h") + "    - name: w\n      recurrence: '@daily'\n      time_zone: UTC\n      duration: 1h\n      kind: staging\n", `bad.yml:9: patching.windows[1].name: window "w" is defined twice`},
		{"unknown window key", fill("'0 2 * * *'", "UTC", "4h", "1h") + "      timezone: UTC\n", `bad.yml:9: patching.windows[0]: unknown key "timezone"`},
		{"duplicate policy", "patching:\n  policies:\n    - name: a\n    - name: a\n", `bad.yml:4: patching.policies[1].name: policy "a" is defined twice`},
		{"policy source", "patching:\n  policies:\n    - name: a\n      source: x/y\n", `bad.yml:4: patching.policies[0].source: "x/y" is not one of tracker.sources`},
		{"bad severity", "patching:\n  policies:\n    - name: a\n      security:\n        min_severity: urgent\n", "bad.yml:5: patching.policies[0].security.min_severity"},
		{"pin not a version", "patching:\n  policies:\n    - name: a\n      pin: latest\n", `bad.yml:4: patching.policies[0].pin: "latest" is not a version`},
		{"negative age", "patching:\n  policies:\n    - name: a\n      min_release_age: -1h\n", "bad.yml:4: patching.policies[0].min_release_age: must not be negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Parse("bad.yml", strings.NewReader(c.yaml))
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v is not config.Errors", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestErrorAt(t *testing.T) {
	c, err := config.LoadFile(filepath.Join("testdata", "patching.yml"))
	if err != nil {
		t.Fatal(err)
	}
	got := c.ErrorAt("patching.policies[1].pin", "version %s is not a known release", "0.4.1").Error()
	want := filepath.Join("testdata", "patching.yml") + ":19: patching.policies[1].pin: version 0.4.1 is not a known release"
	if got != want {
		t.Errorf("ErrorAt = %q, want %q", got, want)
	}
}

// TestExamplePatchingIsDefault: the documented patching section is exactly the default.
func TestExamplePatchingIsDefault(t *testing.T) {
	c, err := config.LoadFile(filepath.Join("..", "configs", "patchctl.example.yml"))
	if err != nil {
		t.Fatal(err)
	}
	def, _ := config.Parse("defaults", strings.NewReader(""))
	if !reflect.DeepEqual(c.Patching.Policies, def.Patching.Policies) || c.Patching.Reminder != def.Patching.Reminder || len(c.Windows()) != 0 {
		t.Errorf("example patching = %+v, defaults %+v", c.Patching, def.Patching)
	}
}

// TestExampleWindowsParse uncomments the documented windows and blackouts and loads them, so
// the example cannot drift from what the parser accepts.
func TestExampleWindowsParse(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "configs", "patchctl.example.yml"))
	if err != nil {
		t.Fatal(err)
	}
	yamlLine := regexp.MustCompile(`^\s*(- )?[a-z_]+:|^\s*#`)
	var out []string
	in := false
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "  # windows:"):
			in = true
		case strings.HasPrefix(line, "  reminder:"):
			in = false
		}
		if rest, ok := strings.CutPrefix(line, "  # "); in && ok && yamlLine.MatchString(rest) {
			line = "  " + rest
		}
		out = append(out, line)
	}
	c, err := config.Parse("example.yml", strings.NewReader(strings.Join(out, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Windows()) != 3 || len(c.Patching.Blackouts) != 1 {
		t.Fatalf("uncommented example has %d windows, %d global blackouts", len(c.Windows()), len(c.Patching.Blackouts))
	}
}
