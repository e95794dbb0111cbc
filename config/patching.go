package config

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-version"

	"github.com/patchctl/patchctl/advisory"
	"github.com/patchctl/patchctl/window"
)

// Patching is the automatic flow: which release becomes a candidate (policies) and when the
// daemon may roll it out (windows). Without windows the daemon never patches on its own.
type Patching struct {
	Policies []PatchPolicy `yaml:"policies" json:"policies"`
	Windows  []Window      `yaml:"windows" json:"windows"`
	// Blackouts apply to every window, on top of each window's own.
	Blackouts []Blackout `yaml:"blackouts" json:"blackouts"`
	// Reminder is how long before a window with work to do Slack is told about it (0: no reminder).
	Reminder time.Duration `yaml:"reminder" json:"reminder"`

	windows []*window.Window // parsed by validation
}

// PatchPolicy says which release is a candidate and how it travels to production.
type PatchPolicy struct {
	Name string `yaml:"name" json:"name"`
	// Source is the tracker source whose releases are candidates (default: the first).
	Source string `yaml:"source" json:"source"`
	// Pin fixes the candidate to one version; empty tracks the newest stable release.
	Pin         string `yaml:"pin" json:"pin,omitempty"`
	Prereleases bool   `yaml:"prereleases" json:"prereleases"`
	// MinReleaseAge is how long a release must have been published before it is a candidate.
	MinReleaseAge time.Duration `yaml:"min_release_age" json:"min_release_age"`
	// RequireApproval holds production until `patchctl rollout approve ID` (default true).
	RequireApproval *bool `yaml:"require_approval" json:"require_approval"`
	// RolloutPolicy is the fleet rollout policy whose waves are used ("" = the default one).
	RolloutPolicy string `yaml:"rollout_policy" json:"rollout_policy,omitempty"`
	// StagingWaves are the waves of the rollout policy run in staging windows; the rest run
	// in production windows (default: the first wave).
	StagingWaves []string      `yaml:"staging_waves" json:"staging_waves,omitempty"`
	Security     SecurityTrack `yaml:"security" json:"security"`
}

// NeedsApproval reports whether production waits for an operator.
func (p PatchPolicy) NeedsApproval() bool { return p.RequireApproval == nil || *p.RequireApproval }

// SecurityTrack is the fast track: such a candidate skips the minimum age and may use
// security windows.
type SecurityTrack struct {
	// MinSeverity: a candidate fixing an advisory that affects the fleet at or above it is
	// fast-tracked (low, medium, high, critical; "" = never by advisory).
	MinSeverity string `yaml:"min_severity" json:"min_severity,omitempty"`
	// Flagged: a release the tracker flags as security-relevant is fast-tracked too.
	Flagged bool `yaml:"security_relevant" json:"security_relevant"`
}

// Severity is MinSeverity parsed (SeverityUnknown when unset).
func (s SecurityTrack) Severity() advisory.Severity {
	v, _ := advisory.ParseSeverity(s.MinSeverity)
	return v
}

// Window is a recurring period in which the daemon may roll out.
type Window struct {
	Name       string `yaml:"name" json:"name"`
	Recurrence string `yaml:"recurrence" json:"recurrence"`
	TimeZone   string `yaml:"time_zone" json:"time_zone"`
	OffsetDays int    `yaml:"offset_days" json:"offset_days"`
	// Duration is real elapsed time from opening to closing.
	Duration time.Duration `yaml:"duration" json:"duration"`
	// Cutoff: no new host starts later than this before the end.
	Cutoff time.Duration `yaml:"cutoff" json:"cutoff"`
	// Kind is staging, production or security.
	Kind string `yaml:"kind" json:"kind"`
	// Policy is the patching policy served (default: the first).
	Policy string `yaml:"policy" json:"policy"`
	// Environments restricts the window to hosts of these inventory environments.
	Environments []string   `yaml:"environments" json:"environments,omitempty"`
	Blackouts    []Blackout `yaml:"blackouts" json:"blackouts,omitempty"`
}

// Blackout is a change freeze over whole days (inclusive), in each window's time zone.
type Blackout struct {
	From   string `yaml:"from" json:"from"`
	To     string `yaml:"to" json:"to"`
	Reason string `yaml:"reason" json:"reason,omitempty"`
}

// DefaultPolicy is the policy used when the file names none.
func DefaultPolicy() PatchPolicy {
	return PatchPolicy{Name: "default", MinReleaseAge: 72 * time.Hour, Security: SecurityTrack{MinSeverity: "high"}}
}

// Windows are the parsed windows, in file order, global blackouts included.
func (c *Config) Windows() []*window.Window { return c.Patching.windows }

// Policy returns a patching policy by name.
func (c *Config) Policy(name string) (PatchPolicy, bool) {
	for _, p := range c.Patching.Policies {
		if p.Name == name {
			return p, true
		}
	}
	return PatchPolicy{}, false
}

// maxWindow bounds a window's duration: a week is already longer than any patch window.
const maxWindow = 7 * 24 * time.Hour

func (c *Config) validatePatching(fail func(field, format string, args ...any)) {
	p := &c.Patching
	if len(p.Policies) == 0 {
		p.Policies = []PatchPolicy{DefaultPolicy()}
	}
	if p.Reminder < 0 {
		fail("patching.reminder", "must not be negative")
	}
	names := uniqueNames{}
	for i := range p.Policies {
		pol := &p.Policies[i]
		field := fmt.Sprintf("patching.policies[%d]", i)
		names.check(field+".name", "policy", pol.Name, fail)
		if pol.Source == "" && len(c.Tracker.Sources) > 0 {
			pol.Source = c.Tracker.Sources[0].Repo
		} else if !c.hasSource(pol.Source) {
			fail(field+".source", "%q is not one of tracker.sources", pol.Source)
		}
		if pol.Pin != "" {
			if _, err := version.NewVersion(pol.Pin); err != nil {
				fail(field+".pin", "%q is not a version", pol.Pin)
			}
		}
		if pol.MinReleaseAge < 0 {
			fail(field+".min_release_age", "must not be negative")
		}
		if pol.Security.MinSeverity != "" {
			if _, err := advisory.ParseSeverity(pol.Security.MinSeverity); err != nil {
				fail(field+".security.min_severity", "%v", err)
			}
		}
	}

	global := c.blackouts("patching.blackouts", p.Blackouts, nil, fail)
	p.windows = nil
	seen := uniqueNames{}
	for i := range p.Windows {
		wc := &p.Windows[i]
		field := fmt.Sprintf("patching.windows[%d]", i)
		bad := false
		failW := func(sub, format string, args ...any) {
			bad = true
			fail(field+sub, format, args...)
		}
		seen.check(".name", "window", wc.Name, failW)
		if wc.Policy == "" {
			wc.Policy = p.Policies[0].Name
		} else if !names[wc.Policy] {
			failW(".policy", "%q is not one of patching.policies", wc.Policy)
		}
		kind := window.Kind(wc.Kind)
		if !kind.Valid() {
			failW(".kind", "must be staging, production or security, not %q", wc.Kind)
		}
		if wc.TimeZone == "" {
			failW(".time_zone", "is required (an IANA name such as Europe/Berlin, or UTC)")
		}
		loc, err := time.LoadLocation(wc.TimeZone)
		if wc.TimeZone != "" && (err != nil || wc.TimeZone == "Local") {
			failW(".time_zone", "unknown time zone %q", wc.TimeZone)
		}
		var rec *window.Recurrence
		if loc != nil && wc.TimeZone != "" {
			if rec, err = window.Parse(wc.Recurrence, loc, wc.OffsetDays); err != nil {
				sub := ".recurrence"
				if wc.OffsetDays < -window.MaxOffsetDays || wc.OffsetDays > window.MaxOffsetDays {
					sub = ".offset_days"
				}
				failW(sub, "%v", err)
			}
		}
		switch {
		case wc.Duration <= 0:
			failW(".duration", "must be positive")
		case wc.Duration > maxWindow:
			failW(".duration", "must be at most %v", maxWindow)
		}
		switch {
		case wc.Cutoff < 0:
			failW(".cutoff", "must not be negative")
		case wc.Duration > 0 && wc.Cutoff >= wc.Duration:
			failW(".cutoff", "%v leaves no time to start a host in a %v window; it must be shorter than the duration", wc.Cutoff, wc.Duration)
		}
		own := c.blackouts(field+".blackouts", wc.Blackouts, global, func(f, format string, args ...any) {
			bad = true
			fail(f, format, args...)
		})
		if bad {
			continue
		}
		p.windows = append(p.windows, &window.Window{
			Name: wc.Name, Kind: kind, Recurrence: rec, Duration: wc.Duration, Cutoff: wc.Cutoff,
			Blackouts: append(append([]window.Blackout(nil), global...), own...), Policy: wc.Policy,
			Environments: wc.Environments,
		})
	}
}

func (c *Config) hasSource(repo string) bool {
	for _, s := range c.Tracker.Sources {
		if s.Repo == repo {
			return true
		}
	}
	return false
}

// blackouts parses a list of blackouts and refuses overlaps within it and with others (the
// global ones), naming the later entry's line.
func (c *Config) blackouts(field string, list []Blackout, others []window.Blackout, fail func(field, format string, args ...any)) []window.Blackout {
	var out []window.Blackout
	var where []string
	for i, b := range list {
		f := fmt.Sprintf("%s[%d]", field, i)
		from, err := window.ParseDate(b.From)
		if err != nil {
			fail(f+".from", "%v", err)
			continue
		}
		to, err := window.ParseDate(b.To)
		if err != nil {
			fail(f+".to", "%v", err)
			continue
		}
		if to.Before(from) {
			fail(f+".to", "%s is before from (%s)", to, from)
			continue
		}
		wb := window.Blackout{From: from, To: to, Reason: b.Reason}
		for j, o := range out {
			if wb.Overlaps(o) {
				fail(f, "%s overlaps %s (%s)", wb, where[j], o)
			}
		}
		for _, o := range others {
			if wb.Overlaps(o) {
				fail(f, "%s overlaps patching.blackouts %s", wb, o)
			}
		}
		out = append(out, wb)
		where = append(where, f)
	}
	return out
}
