package advisory_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/advisory"
	"github.com/patchctl/patchctl/internal/readfile"
	"github.com/patchctl/patchctl/internal/strictyaml"
)

func ids(as []advisory.Advisory) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	slices.Sort(out)
	return out
}

func builtin(t *testing.T) *advisory.Feed {
	t.Helper()
	f, err := advisory.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var (
	fixed041 = []string{"PATCHCTL-2015-0001", "PATCHCTL-2015-0002"}
	upTo040  = []string{"PATCHCTL-2015-0003", "PATCHCTL-2015-0004", "PATCHCTL-2015-0005"}
	upTo041  = []string{"CVE-2013-6393", "CVE-2014-2525", "CVE-2014-9130", "PATCHCTL-2021-0001",
		"PATCHCTL-2021-0002", "PATCHCTL-2021-0003", "PATCHCTL-2021-0004", "PATCHCTL-2021-0005"}
	unfixed = []string{"PATCHCTL-2022-0001"}
)

func join(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return out
}

func TestBuiltinAffecting(t *testing.T) {
	feed := builtin(t)
	tests := []struct {
		version string
		want    []string
	}{
		{"0.4.0", join(fixed041, upTo040, upTo041)},
		{"v0.4.0", join(fixed041, upTo040, upTo041)},
		{"0.4.1", upTo041},
		// A 0.4.1 release candidate has the 0.4.1 fixes but not the 0.5.0 ones.
		{"0.4.1-rc1", upTo041},
		// Rule: a pre-release of fixed_in carries the fix (0.5.0 = "same as 0.5.0-RC1").
		{"0.5.0-RC1", unfixed},
		{"v0.5.0-RC1", unfixed},
		{"0.5.0", unfixed},
		{"0.5.0+dfsg", unfixed},
		// Unfixed advisories still affect later versions; fixed ones never do.
		{"0.5.1", unfixed},
		{"0.5.2-tmg19", unfixed},
		{"0.3.0", join(
			[]string{"PATCHCTL-2014-0001", "PATCHCTL-2014-0002"}, upTo040, upTo041)},
		{"0.2.3", join([]string{"PATCHCTL-2013-0001", "PATCHCTL-2014-0001", "PATCHCTL-2014-0002"}, upTo040, upTo041)},
		{"0.1.18", join([]string{"PATCHCTL-2012-0001", "PATCHCTL-2014-0001", "PATCHCTL-2014-0002"}, upTo040, upTo041)},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			got, err := feed.Affecting(tt.version)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("Affecting(%s) =\n %v\nwant\n %v", tt.version, ids(got), tt.want)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Severity > got[i-1].Severity {
					t.Errorf("not most severe first: %s (%s) after %s (%s)", got[i].ID, got[i].Severity, got[i-1].ID, got[i-1].Severity)
				}
			}
		})
	}
	if _, err := feed.Affecting("nutcracker-0.5.0"); err == nil {
		t.Error("Affecting(nutcracker-0.5.0): no error")
	}
}

// The shipped feed is what the inventory alerts on: every fix has a release date that is
// the release date of its fixed_in version.
func TestBuiltinDates(t *testing.T) {
	releases := map[string]string{"0.1.19": "2012-07-31", "0.2.2": "2012-12-18", "0.2.4": "2013-04-13",
		"0.4.0": "2014-10-18", "0.4.1": "2015-06-22", "0.5.0": "2021-07-13"}
	for _, a := range builtin(t).All() {
		if a.FixedIn == "" {
			continue
		}
		if got := a.Published.Format(time.DateOnly); got != releases[a.FixedIn] {
			t.Errorf("%s: published %s, want the %s release date %s", a.ID, got, a.FixedIn, releases[a.FixedIn])
		}
		if a.Severity == advisory.SeverityUnknown || a.Description == "" || len(a.References) == 0 {
			t.Errorf("%s: incomplete: %+v", a.ID, a)
		}
	}
}

func TestParseErrors(t *testing.T) {
	head := "advisories:\n  - id: A-1\n    title: t\n    severity: low\n"
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "x.yml: empty file"},
		{"unknown key", head + "    affected: \"< 1.0\"\n    colour: red\n", `x.yml:6: advisories[0]: unknown key "colour"`},
		{"unknown top key", "advisory: []\n", `x.yml:1: unknown key "advisory"`},
		{"bad severity", "advisories:\n  - id: A\n    title: t\n    severity: severe\n    affected: \"< 1\"\n", `x.yml:4: severity "severe" is not one of`},
		{"missing severity", "advisories:\n  - id: A\n    title: t\n    affected: \"< 1\"\n", "x.yml:2: advisory A: severity: missing"},
		{"wrong type", head + "    affected: \"< 1.0\"\n    references: commit\n", `x.yml:6: advisories[0].references: want a list, not "commit"`},
		{"bad date", head + "    affected: \"< 1.0\"\n    fixed_in: 1.0\n    published: last june\n", `x.yml:7: published: "last june" is not a date (YYYY-MM-DD)`},
		{"bad constraint", head + "    affected: \">= 0.4.0 < 0.5.0\"\n", `x.yml:2: advisory A-1: affected: malformed constraint`},
		{"or constraint", head + "    affected: \"< 0.4 || > 0.5\"\n", `x.yml:2: advisory A-1: affected: `},
		{"missing affected", head, "x.yml:2: advisory A-1: affected: missing"},
		{"missing id", "advisories:\n  - title: t\n    severity: low\n    affected: \"< 1\"\n", "x.yml:2: advisory #1: id: missing"},
		{"bad fixed_in", head + "    affected: \"< 1.0\"\n    fixed_in: one\n    published: 2020-01-01\n", "x.yml:2: advisory A-1: fixed_in: malformed version: one"},
		{"fixed inside range", head + "    affected: \"<= 1.0\"\n    fixed_in: 1.0\n    published: 2020-01-01\n", `fixed_in: 1.0 is inside the affected range "<= 1.0"`},
		{"fixed without date", head + "    affected: \"< 1.0\"\n    fixed_in: 1.0\n", "x.yml:2: advisory A-1: published: missing"},
		{"duplicate", head + "    affected: \"< 1\"\n  - id: A-1\n    title: u\n    severity: low\n    affected: \"< 2\"\n", "x.yml:6: advisory A-1: duplicate id (first on line 2)"},
		{"syntax", "advisories:\n  - id: [\n", "x.yml:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := advisory.Parse([]byte(tt.in), "x.yml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v, %v; want an error containing %q", f, err, tt.want)
			}
		})
	}
}

func TestParseEmptyIsTyped(t *testing.T) {
	_, err := advisory.Parse(nil, "x.yml")
	if !errors.Is(err, strictyaml.ErrEmpty) {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadExtends(t *testing.T) {
	feed, err := advisory.Load(filepath.Join("testdata", "extra.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if n, m := len(feed.All()), len(builtin(t).All()); n != m+1 {
		t.Errorf("%d advisories, want %d (one replaced, one added)", n, m+1)
	}
	got, err := feed.Affecting("0.4.0")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(got, func(a advisory.Advisory) bool { return a.ID == "PATCHCTL-2015-0005" })
	if i < 0 || got[i].Severity != advisory.SeverityHigh || got[i+1].Severity > advisory.SeverityHigh {
		t.Errorf("override not applied or not sorted: %v", got)
	}
	got, _ = feed.Affecting("0.5.0")
	if !slices.Equal(ids(got), []string{"PATCHCTL-2022-0001", "SITE-2024-0001"}) {
		t.Errorf("0.5.0: %v", ids(got))
	}
	if _, err := advisory.Load(filepath.Join("testdata", "missing.yml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestFromGitHub(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "github-advisories.json"))
	if err != nil {
		t.Fatal(err)
	}
	var gh []advisory.GitHubAdvisory
	if err := json.Unmarshal(data, &gh); err != nil {
		t.Fatal(err)
	}
	var all []advisory.Advisory
	for _, g := range gh {
		as, err := advisory.FromGitHub(g)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, as...)
	}
	feed, err := advisory.New(all...)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(feed.All()); !slices.Equal(got, []string{"CVE-2099-0001", "CVE-2099-0001/2", "GHSA-abcd-efgh-ijkl"}) {
		t.Fatalf("ids = %v", got)
	}
	first := feed.All()[0]
	if first.Severity != advisory.SeverityHigh || first.FixedIn != "0.5.0" ||
		!first.Published.Equal(time.Date(2021, 7, 20, 10, 0, 0, 0, time.UTC)) || len(first.References) != 1 {
		t.Errorf("first = %+v", first)
	}
	tests := []struct {
		version string
		want    []string
	}{
		{"0.3.0", []string{"CVE-2099-0001"}},
		{"0.4.0", []string{"CVE-2099-0001", "GHSA-abcd-efgh-ijkl"}},
		{"0.4.1", []string{"GHSA-abcd-efgh-ijkl"}},
		// Fixed for the first range (pre-release of its fix), judged as 0.5.0 for the second.
		{"0.5.0-RC1", []string{"CVE-2099-0001/2"}},
		{"0.5.0", []string{"CVE-2099-0001/2"}},
		{"0.5.1-rc1", nil},
		{"0.5.1", nil},
	}
	for _, tt := range tests {
		got, err := feed.Affecting(tt.version)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), tt.want) {
			t.Errorf("Affecting(%s) = %v, want %v", tt.version, ids(got), tt.want)
		}
	}

	bad := advisory.GitHubAdvisory{GHSAID: "GHSA-x", Severity: "high",
		Vulnerabilities: []advisory.GitHubVulnerability{{VulnerableVersionRange: ">= 0.4.0 < 0.5.0"}}}
	if _, err := advisory.FromGitHub(bad); err == nil || !strings.Contains(err.Error(), "GHSA-x") {
		t.Errorf("malformed range: %v", err)
	}
}

// Affecting with a severity stored as JSON round-trips.
func TestAdvisoryJSON(t *testing.T) {
	feed := builtin(t)
	data, err := json.Marshal(feed.All())
	if err != nil {
		t.Fatal(err)
	}
	var back []advisory.Advisory
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	again, err := advisory.New(back...)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := feed.Affecting("0.4.1")
	b, _ := again.Affecting("0.4.1")
	if !slices.Equal(ids(a), ids(b)) || a[0].Severity != advisory.SeverityHigh {
		t.Errorf("after JSON round trip: %v vs %v", ids(a), ids(b))
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("advisories:\n  - id: A\n    title: t\n    severity: low\n    affected: \"< 1\"\n"))
	f.Add([]byte("advisories:\n  - id: A\n    title: t\n    severity: high\n    affected: \">= 0.4, < 0.5\"\n    fixed_in: 0.5.0\n    published: 2021-07-13\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		feed, err := advisory.Parse(data, "f.yml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, v := range []string{"0.1.0", "0.4.1", "0.5.0-RC1", "1.0.0"} {
			if _, err := feed.Affecting(v); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestLoadBounded: a feed file without end is refused at the cap, naming it.
func TestLoadBounded(t *testing.T) {
	_, err := advisory.Load("/dev/zero")
	if !errors.Is(err, readfile.ErrTooLarge) || !strings.Contains(err.Error(), "/dev/zero") {
		t.Fatalf("err = %v, want too large naming /dev/zero", err)
	}
}
