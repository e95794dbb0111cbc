package patching

import (
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/advisory"
	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/inventory"
	"github.com/patchctl/patchctl/store"
)

func TestPickCandidate(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	rels := []store.Release{
		{Version: "0.4.1", PublishedAt: day(1)},
		{Version: "0.5.0", PublishedAt: day(10), Security: true, Reasons: []string{"segfault"}},
		{Version: "0.6.0-RC1", PublishedAt: day(20), Prerelease: true},
		{Version: "0.3.0", TagOnly: true, FirstSeen: day(2)},
	}
	exposed := []inventory.Exposure{{Host: "a", Version: "0.4.1", Findings: []inventory.Finding{{ID: "CVE-1", Severity: advisory.SeverityCritical, FixedIn: "0.5.0"}}}}
	pol := func(mod func(p *config.PatchPolicy)) config.PatchPolicy {
		p := config.DefaultPolicy()
		p.MinReleaseAge = 48 * time.Hour
		if mod != nil {
			mod(&p)
		}
		return p
	}
	cases := []struct {
		name      string
		pol       config.PatchPolicy
		rels      []store.Release
		bad       []store.BadVersion
		hosts     []inventory.Exposure
		want      string // version, or the reason when none
		readyAt   time.Time
		fastTrack string
	}{
		{"newest stable", pol(nil), rels, nil, nil, "0.5.0", day(12), ""},
		{"pre-releases allowed", pol(func(p *config.PatchPolicy) { p.Prereleases = true }), rels, nil, nil, "0.6.0-RC1", day(22), ""},
		{"pinned", pol(func(p *config.PatchPolicy) { p.Pin = "v0.4.1" }), rels, nil, nil, "0.4.1", day(3), ""},
		{"pinned tag without a date ages from first seen", pol(func(p *config.PatchPolicy) { p.Pin = "0.3.0" }), rels, nil, nil, "0.3.0", day(4), ""},
		{"pinned unknown", pol(func(p *config.PatchPolicy) { p.Pin = "9.9.9" }), rels, nil, nil, "pinned version 9.9.9 is not a release patchctl knows", time.Time{}, ""},
		{"pinned pre-release not allowed", pol(func(p *config.PatchPolicy) { p.Pin = "0.6.0-RC1" }), rels, nil, nil, "is a pre-release", time.Time{}, ""},
		{"newest is bad: no fallback", pol(nil), rels, []store.BadVersion{{Version: "0.5.0", Reason: "rollout r1 failed"}}, nil, "0.5.0 is marked bad (rollout r1 failed)", time.Time{}, ""},
		{"nothing known", pol(nil), nil, nil, nil, "no release known yet", time.Time{}, ""},
		{"fixes a critical advisory", pol(nil), rels, nil, exposed, "0.5.0", day(10), "fixes CVE-1 (critical, 1 hosts)"},
		{"below the threshold", pol(func(p *config.PatchPolicy) { p.Security.MinSeverity = "critical" }), rels,
			nil, []inventory.Exposure{{Host: "a", Findings: []inventory.Finding{{ID: "CVE-2", Severity: advisory.SeverityHigh, FixedIn: "0.5.0"}}}}, "0.5.0", day(12), ""},
		{"fix not in the candidate", pol(nil), rels, nil, []inventory.Exposure{{Host: "a", Findings: []inventory.Finding{{ID: "CVE-3", Severity: advisory.SeverityHigh, FixedIn: "0.5.1"}}}}, "0.5.0", day(12), ""},
		{"flagged security-relevant, trusted", pol(func(p *config.PatchPolicy) { p.Security = config.SecurityTrack{Flagged: true} }), rels, nil, nil, "0.5.0", day(10), "flagged security-relevant: segfault"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, why := pickCandidate(c.pol, c.rels, c.bad, c.hosts)
			if why != "" {
				if got.Version != "" || !strings.Contains(why, c.want) {
					t.Fatalf("no candidate because %q, want %q", why, c.want)
				}
				return
			}
			if got.Version != c.want || !got.ReadyAt.Equal(c.readyAt) || !strings.Contains(got.FastTrack, c.fastTrack) || (c.fastTrack == "") != (got.FastTrack == "") {
				t.Fatalf("candidate %s ready %v fast %q; want %s ready %v fast %q", got.Version, got.ReadyAt, got.FastTrack, c.want, c.readyAt, c.fastTrack)
			}
		})
	}
}

func TestBehind(t *testing.T) {
	hosts := []inventory.Exposure{{Host: "b", Environment: "production", Version: "0.4.1"}, {Host: "a", Environment: "staging", Version: "0.4.1"},
		{Host: "c", Environment: "production", Version: "0.5.0"}, {Host: "d", Environment: "production"}}
	if got := behind(hosts, "0.5.0", nil); strings.Join(got, ",") != "a,b" {
		t.Errorf("behind = %v", got)
	}
	if got := behind(hosts, "0.5.0", []string{"staging"}); strings.Join(got, ",") != "a" {
		t.Errorf("behind in staging = %v", got)
	}
}
