package tracker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/mirror"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/tracker"
)

const exampleDir = "testdata/example"

// TestSourceConformance runs the same checks against every Source implementation, over
// the same data: testdata/example served by the mirror, and read from disk.
func TestSourceConformance(t *testing.T) {
	impls := map[string]func(t *testing.T, repo string) tracker.Source{
		"github": func(t *testing.T, repo string) tracker.Source {
			f := newFakeGitHub(t, os.DirFS(exampleDir), mirror.Options{})
			return githubSource(t, f, repo, tempStore(t), tracker.GitHubOptions{Tags: true, Advisories: true})
		},
		"dir": func(t *testing.T, repo string) tracker.Source {
			return tracker.NewDir(repo, exampleDir, tracker.DirOptions{Tags: true, Advisories: true})
		},
	}
	for name, newSource := range impls {
		t.Run(name, func(t *testing.T) { sourceSuite(t, newSource) })
	}
}

func sourceSuite(t *testing.T, newSource func(t *testing.T, repo string) tracker.Source) {
	ctx := context.Background()
	src := newSource(t, "acme/proxy")
	if src.Name() != "acme/proxy" {
		t.Errorf("Name() = %q", src.Name())
	}
	snap, err := src.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tracker.SortReleases(snap.Releases)
	// The draft (1.3.0) and the tags that are not versions (nightly, release-candidate)
	// are left out; tags without a Release object become TagOnly releases.
	want := []struct {
		tag, version   string
		pre, tagOnly   bool
		published, url bool
	}{
		{"v2.0.0-rc1", "2.0.0-rc1", true, false, true, true},
		{"1.2.0", "1.2.0", false, false, true, true},
		{"v1.1.1", "1.1.1", false, false, true, true},
		{"v1.1.0", "1.1.0", false, true, false, false},
		{"v1.0.0", "1.0.0", false, true, false, false},
	}
	if len(snap.Releases) != len(want) {
		t.Fatalf("got %d releases %v, want %d", len(snap.Releases), tagsOf(snap.Releases), len(want))
	}
	for i, w := range want {
		r := snap.Releases[i]
		if r.Source != "acme/proxy" || r.Tag != w.tag || r.Version != w.version || r.Prerelease != w.pre ||
			r.TagOnly != w.tagOnly || r.PublishedAt.IsZero() == w.published || (r.URL != "") != w.url {
			t.Errorf("release %d = %+v, want %+v", i, r, w)
		}
	}
	// The advisory in triage is not published and is left out.
	if len(snap.Advisories) != 1 {
		t.Fatalf("got %d advisories, want 1: %+v", len(snap.Advisories), snap.Advisories)
	}
	a := snap.Advisories[0]
	if a.ID != "GHSA-abcd-efgh-ijkl" || a.CVE != "CVE-2024-0001" || a.PatchedVersion != "1.2.0" ||
		a.VulnerableRange != ">= 1.0.0, < 1.2.0" || a.Severity != "high" || a.PublishedAt.IsZero() {
		t.Errorf("advisory = %+v", a)
	}

	if _, err := newSource(t, "acme/missing").Fetch(ctx); err == nil {
		t.Error("unknown repository: no error")
	}
}

func tagsOf(rs []store.Release) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Tag)
	}
	return out
}

func TestGitHubOptionsDisableTagsAndAdvisories(t *testing.T) {
	f := newFakeGitHub(t, os.DirFS(exampleDir), mirror.Options{})
	g := githubSource(t, f, "acme/proxy", tempStore(t), tracker.GitHubOptions{})
	snap, err := g.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Releases) != 3 || len(snap.Advisories) != 0 || f.requestCount() != 1 {
		t.Errorf("releases only: got %v, %d advisories, %d requests", tagsOf(snap.Releases), len(snap.Advisories), f.requestCount())
	}
}

func TestDirSourceErrors(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "repos", "acme", "proxy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bad := "[\n  {\"tag_name\": \"v1.0.0\"},\n  {\"tag_name\": v1}\n]\n"
	if err := os.WriteFile(filepath.Join(dir, "releases.json"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := tracker.NewDir("acme/proxy", root, tracker.DirOptions{}).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "releases.json")+":3: malformed JSON") {
		t.Errorf("bad JSON: err = %v, want the file and line 3", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "releases.json"), []byte(`[{"tag_name": 5}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = tracker.NewDir("acme/proxy", root, tracker.DirOptions{}).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "releases.json:1: malformed JSON") {
		t.Errorf("wrong type: err = %v", err)
	}
}

func TestLatestOrdersByVersionNotDate(t *testing.T) {
	rel := func(tag string, pre bool, published string) store.Release {
		r := store.Release{Tag: tag, Prerelease: pre}
		r.PublishedAt, _ = time.Parse(time.DateOnly, published) // "" stays zero
		if v, err := tracker.ParseVersion(tag); err == nil {
			r.Version = v.String()
		}
		return r
	}
	// twemproxy's own history: v0.3.0's tag date is wrong (2013-04-18, before v0.2.4's),
	// and the bare "0.5.0" follows "v"-prefixed tags.
	twemproxy := []store.Release{
		rel("v0.2.4", false, "2013-04-13"), rel("v0.3.0", false, "2013-04-18"),
		rel("0.5.0", false, "2021-07-13"), rel("v0.5.0-RC1", true, "2021-07-06"),
		rel("v0.4.1", false, "2015-06-22"), rel("v0.4.0", false, "2014-10-18"),
	}
	cases := []struct {
		name     string
		releases []store.Release
		allowPre bool
		want     string
	}{
		{"twemproxy stable", twemproxy, false, "0.5.0"},
		{"twemproxy with pre-releases", twemproxy, true, "0.5.0"},
		{"rc newer than stable, not allowed", []store.Release{rel("v1.0.0", false, ""), rel("v1.1.0-rc1", true, "")}, false, "v1.0.0"},
		{"rc newer than stable, allowed", []store.Release{rel("v1.0.0", false, ""), rel("v1.1.0-rc1", true, "")}, true, "v1.1.0-rc1"},
		{"pre-release by version, flag unset", []store.Release{rel("1.0.0", false, ""), {Tag: "1.1.0-beta", Version: "1.1.0-beta"}}, false, "1.0.0"},
		{"10 beats 9", []store.Release{rel("v0.9.0", false, ""), rel("v0.10.0", false, "")}, false, "v0.10.0"},
		{"unparsable ignored", []store.Release{{Tag: "nightly"}, rel("v1.0.0", false, "")}, false, "v1.0.0"},
		{"none", []store.Release{{Tag: "nightly"}}, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := tracker.Latest(c.releases, c.allowPre)
			if got.Tag != c.want || ok != (c.want != "") {
				t.Errorf("Latest = %q, %v; want %q", got.Tag, ok, c.want)
			}
		})
	}
	tracker.SortReleases(twemproxy)
	if got := strings.Join(tagsOf(twemproxy), " "); got != "0.5.0 v0.5.0-RC1 v0.4.1 v0.4.0 v0.3.0 v0.2.4" {
		t.Errorf("SortReleases = %s", got)
	}
}

func TestParseVersion(t *testing.T) {
	cases := []struct{ tag, want string }{
		{"v0.4.1", "0.4.1"},
		{"0.5.0", "0.5.0"},
		{"v0.5.0-RC1", "0.5.0-RC1"},
		{"v0.1.16", "0.1.16"},
		{"1.2", "1.2.0"},
		{"", ""},
		{"nightly", ""},
		{"twemproxy-0.5.0", ""},
		{" 0.5.0", ""},
		{"0.5.0\n", ""},
	}
	for _, c := range cases {
		v, err := tracker.ParseVersion(c.tag)
		switch {
		case c.want == "" && err == nil:
			t.Errorf("ParseVersion(%q) = %s, want an error", c.tag, v)
		case c.want != "" && (err != nil || v.String() != c.want):
			t.Errorf("ParseVersion(%q) = %v, %v; want %s", c.tag, v, err, c.want)
		}
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"v0.4.1", "0.5.0", "v0.5.0-RC1", "0.5.0rc1", "1.2.3+build", "v", "0.05.0", "1.2.3.4.5", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		v, err := tracker.ParseVersion(tag)
		if err != nil {
			return
		}
		if strings.ContainsAny(tag, " \t\r\n") {
			t.Fatalf("accepted %q with white space", tag)
		}
		// The normalised form is what the store keeps: it must parse back to the same version.
		again, err := tracker.ParseVersion(v.String())
		if err != nil || !again.Equal(v) || again.Prerelease() != v.Prerelease() {
			t.Fatalf("%q → %q → %v, %v", tag, v.String(), again, err)
		}
	})
}

func TestWatchesFromConfig(t *testing.T) {
	f := newFakeGitHub(t, mirror.Twemproxy(), mirror.Options{})
	abs, err := filepath.Abs(exampleDir)
	if err != nil {
		t.Fatal(err)
	}
	yml := fmt.Sprintf("github:\n  api_url: %s\ntracker:\n  sources:\n    - repo: acme/proxy\n      dir: %s\n      prereleases: true\n    - repo: twitter/twemproxy\n      tags: false\n",
		strings.TrimSuffix(f.URL, "/"), abs)
	cfg, err := config.Parse("patchctl.yml", strings.NewReader(yml))
	if err != nil {
		t.Fatal(err)
	}
	st := tempStore(t)
	watches, err := tracker.Watches(cfg, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := tracker.New(st, watches, tracker.Options{}).Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%s %d %s; %s %d %s", rep.Sources[0].Source, rep.Sources[0].Releases, rep.Sources[0].Latest.Tag,
		rep.Sources[1].Source, rep.Sources[1].Releases, rep.Sources[1].Latest.Tag)
	if want := "acme/proxy 5 v2.0.0-rc1; twitter/twemproxy 2 0.5.0"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestNewGitHubChecksItsArguments(t *testing.T) {
	f := newFakeGitHub(t, mirror.Twemproxy(), mirror.Options{})
	// Without the trailing slash go-github refuses every call; NewGitHub adds it.
	g, err := tracker.NewGitHub("twitter/twemproxy", tracker.GitHubOptions{APIURL: strings.TrimSuffix(f.URL, "/")})
	if err != nil {
		t.Fatal(err)
	}
	if snap, err := g.Fetch(context.Background()); err != nil || len(snap.Releases) != 2 {
		t.Errorf("no trailing slash: %d releases, %v", len(snap.Releases), err)
	}
	for _, c := range []struct{ repo, url string }{
		{"twemproxy", ""}, {"a/b/c", ""}, {"/b", ""}, {"a/b", "ftp://example.com/"}, {"a/b", "://"},
	} {
		if _, err := tracker.NewGitHub(c.repo, tracker.GitHubOptions{APIURL: c.url}); err == nil {
			t.Errorf("NewGitHub(%q, %q): no error", c.repo, c.url)
		}
	}
}
