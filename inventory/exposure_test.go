package inventory_test

import (
	"slices"
	"testing"
	"time"

	"github.com/patchctl/patchctl/advisory"
	"github.com/patchctl/patchctl/inventory"
)

var day = func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func testFeed(t *testing.T) *advisory.Feed {
	t.Helper()
	feed, err := advisory.New(
		advisory.Advisory{ID: "A-crash", Title: "crash", Severity: advisory.SeverityHigh, Affected: "< 0.4.1",
			FixedIn: "0.4.1", Published: day(2015, 6, 22)},
		advisory.Advisory{ID: "B-leak", Title: "leak", Severity: advisory.SeverityMedium, Affected: "<= 0.4.1",
			FixedIn: "0.5.0", Published: day(2021, 7, 13)},
		advisory.Advisory{ID: "C-open", Title: "unfixed", Severity: advisory.SeverityLow, Affected: ">= 0.5.0"},
	)
	if err != nil {
		t.Fatal(err)
	}
	return feed
}

func TestAssess(t *testing.T) {
	releases := []inventory.Release{
		{Version: "0.5.0", Published: day(2021, 7, 13)},
		{Version: "v0.4.1", Published: day(2015, 6, 22)},
		{Version: "v0.5.0-RC1", Prerelease: true},
		{Version: "0.6.0-beta"}, // a pre-release tag even without the flag
		{Version: "v0.4.0"},
	}
	as, err := inventory.NewAssessor(testFeed(t), releases)
	if err != nil {
		t.Fatal(err)
	}
	now := day(2021, 7, 23)
	tests := []struct {
		version  string
		behind   int
		findings []string
		days     []int
		max      advisory.Severity
		err      bool
	}{
		{"0.4.0", 2, []string{"A-crash", "B-leak"}, []int{2223, 10}, advisory.SeverityHigh, false},
		{"0.4.1", 1, []string{"B-leak"}, []int{10}, advisory.SeverityMedium, false},
		{"0.5.0-RC1", 1, []string{"C-open"}, []int{0}, advisory.SeverityLow, false},
		{"0.5.0", 0, []string{"C-open"}, []int{0}, advisory.SeverityLow, false},
		{"0.6.0", 0, []string{"C-open"}, []int{0}, advisory.SeverityLow, false},
		{"", 0, nil, nil, advisory.SeverityUnknown, false},
		{"garbage!", 0, nil, nil, advisory.SeverityUnknown, true},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			e := as.Assess(inventory.Observation{Host: "h", Environment: "prod", Version: tt.version, Answering: true}, now)
			var ids []string
			var days []int
			for _, f := range e.Findings {
				ids, days = append(ids, f.ID), append(days, f.DaysExposed)
			}
			if e.Latest != "0.5.0" || e.Behind != tt.behind || !slices.Equal(ids, tt.findings) ||
				!slices.Equal(days, tt.days) || e.MaxSeverity != tt.max || (e.Error != "") != tt.err {
				t.Errorf("Assess(%s) = %+v", tt.version, e)
			}
		})
	}
	if _, err := inventory.NewAssessor(testFeed(t), []inventory.Release{{Version: "latest"}}); err == nil {
		t.Error("NewAssessor accepted version \"latest\"")
	}
}

func TestAssessNoReleases(t *testing.T) {
	as, err := inventory.NewAssessor(testFeed(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := as.Assess(inventory.Observation{Version: "0.4.0"}, day(2022, 1, 1))
	if e.Latest != "" || e.Behind != 0 || len(e.Findings) != 2 {
		t.Errorf("%+v", e)
	}
}

func TestSummarize(t *testing.T) {
	exps := []inventory.Exposure{
		{Environment: "prod", Version: "0.4.1", Answering: true, Behind: 1, MaxSeverity: advisory.SeverityMedium, Findings: []inventory.Finding{{ID: "B"}}},
		{Environment: "prod", Version: "0.4.1", Answering: false, Behind: 1, MaxSeverity: advisory.SeverityMedium, Findings: []inventory.Finding{{ID: "B"}}},
		{Environment: "prod", Version: "0.5.1", Answering: true},
		{Environment: "dev", Answering: false},
		{Environment: "canary", Version: "0.4.0", Answering: true, Behind: 2, MaxSeverity: advisory.SeverityHigh, Findings: []inventory.Finding{{ID: "A"}, {ID: "B"}}},
	}
	sum := inventory.Summarize(exps)
	var envs []string
	for _, s := range sum {
		envs = append(envs, s.Environment)
	}
	if !slices.Equal(envs, []string{"canary", "dev", "prod"}) {
		t.Fatalf("environments = %v", envs)
	}
	prod := sum[2]
	if prod.Hosts != 3 || prod.Answering != 2 || prod.Exposed != 2 || prod.Behind != 2 ||
		prod.ByVersion["0.4.1"] != 2 || prod.ByVersion["0.5.1"] != 1 ||
		prod.ByExposure["medium"] != 2 || prod.ByExposure[inventory.Unexposed] != 1 {
		t.Errorf("prod = %+v", prod)
	}
	if dev := sum[1]; dev.Hosts != 1 || dev.ByVersion[inventory.Unknown] != 1 || dev.ByExposure[inventory.Unknown] != 1 || dev.Exposed != 0 {
		t.Errorf("dev = %+v", dev)
	}
	if c := sum[0]; c.ByExposure["high"] != 1 || c.Exposed != 1 {
		t.Errorf("canary = %+v", c)
	}
}
