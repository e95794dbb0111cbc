package tracker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/metrics"
	"github.com/patchctl/patchctl/mirror"
	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/tracker"
)

func pollOne(t *testing.T, tr *tracker.Tracker) (tracker.SourceReport, error) {
	t.Helper()
	rep, err := tr.Poll(context.Background())
	if len(rep.Sources) != 1 {
		t.Fatalf("report has %d sources, want 1", len(rep.Sources))
	}
	return rep.Sources[0], err
}

func TestFirstPollSummaryAndSecurityFlags(t *testing.T) {
	st := tempStore(t)
	f := newFakeGitHub(t, os.DirFS(exampleDir), mirror.Options{})
	src := githubSource(t, f, "acme/proxy", st, tracker.GitHubOptions{Tags: true, Advisories: true})
	tr := tracker.New(st, []tracker.Watch{{Source: src}}, tracker.Options{Keywords: keywords})

	sr, err := pollOne(t, tr)
	if err != nil {
		t.Fatal(err)
	}
	if sr.Outcome != tracker.OutcomeOK || !sr.First || sr.Releases != 5 || sr.Advisories != 1 || sr.Latest == nil || sr.Latest.Tag != "1.2.0" {
		t.Errorf("report = %+v", sr)
	}
	items := outbox(t, st)
	if len(items) != 1 || items[0].Key != "tracking:acme/proxy" {
		t.Fatalf("outbox = %v, want one tracking summary", keys(items))
	}
	var p notify.Envelope
	if err := json.Unmarshal(items[0].Payload, &p); err != nil {
		t.Fatal(err)
	}
	if p.Kind != "tracking.start" || p.Source != "acme/proxy" || p.Count != 5 || p.Security != 2 || p.Latest == nil || p.Latest.Tag != "1.2.0" {
		t.Errorf("summary = %+v", p)
	}

	// v1.1.1 says "Segfault"; 1.2.0 is the advisory's patched version and says "Windows",
	// which must not match the keyword "dos".
	reasons := map[string][]string{}
	for _, r := range storedReleases(t, st, "acme/proxy") {
		if r.Security != (len(r.Reasons) > 0) {
			t.Errorf("%s: Security %v with reasons %v", r.Tag, r.Security, r.Reasons)
		}
		if r.FirstSeen.IsZero() {
			t.Errorf("%s: FirstSeen not set", r.Tag)
		}
		reasons[r.Tag] = r.Reasons
	}
	want := map[string][]string{
		"v1.1.1": {"keyword:segfault"},
		"1.2.0":  {"advisory:GHSA-abcd-efgh-ijkl"},
	}
	for tag, rs := range reasons {
		if !slices.Equal(rs, want[tag]) {
			t.Errorf("%s: reasons %v, want %v", tag, rs, want[tag])
		}
	}
}

func TestNewReleaseAlertsOnceAcrossRestarts(t *testing.T) {
	data := t.TempDir()
	dbPath := filepath.Join(t.TempDir(), "patchctl.db")
	rels := genReleases(3)
	writeRepo(t, data, "acme/cache", rels, []map[string]any{}, []map[string]any{})
	f := newFakeGitHub(t, os.DirFS(data), mirror.Options{})

	poll := func() tracker.SourceReport {
		t.Helper()
		st := openStore(t, dbPath) // a daemon restart between polls
		defer st.Close()
		src := githubSource(t, f, "acme/cache", st, tracker.GitHubOptions{Tags: true, Advisories: true})
		sr, err := pollOne(t, tracker.New(st, []tracker.Watch{{Source: src}}, tracker.Options{Keywords: keywords}))
		if err != nil {
			t.Fatal(err)
		}
		return sr
	}
	allKeys := func() []string {
		st := openStore(t, dbPath)
		defer st.Close()
		return keys(outbox(t, st))
	}

	if sr := poll(); !sr.First {
		t.Fatalf("first poll: %+v", sr)
	}
	rels = append([]map[string]any{release("v1.1.0", "Fixes a crash on empty keys.", false)}, rels...)
	writeRepo(t, data, "acme/cache", rels, nil, nil)
	sr := poll()
	if sr.First || sr.Outcome != tracker.OutcomeOK || len(sr.NewReleases) != 1 || sr.NewReleases[0].Tag != "v1.1.0" {
		t.Fatalf("poll after release: %+v", sr)
	}
	for range 2 {
		if sr := poll(); sr.Outcome != tracker.OutcomeUnchanged || len(sr.NewReleases) != 0 {
			t.Errorf("repeated poll: %+v", sr)
		}
	}
	wantKeys := []string{"tracking:acme/cache", "release:acme/cache:v1.1.0"}
	if got := allKeys(); !slices.Equal(got, wantKeys) {
		t.Errorf("outbox keys = %v, want %v", got, wantKeys)
	}

	st := openStore(t, dbPath)
	defer st.Close()
	items := outbox(t, st)
	var p notify.Envelope
	if err := json.Unmarshal(items[1].Payload, &p); err != nil {
		t.Fatal(err)
	}
	if p.Kind != "release.new" || p.Release.Tag != "v1.1.0" || !p.Release.Security ||
		!slices.Equal(p.Release.Reasons, []string{"keyword:crash"}) || p.Release.FirstSeen.IsZero() {
		t.Errorf("payload = %+v", p)
	}
	var evs []store.Event
	if err := st.View(context.Background(), func(tx *store.Tx) (err error) {
		evs, err = tx.Events(store.EventFilter{Kind: "release.new"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Fields["tag"] != "v1.1.0" || evs[0].Fields["security"] != "true" {
		t.Errorf("release.new events = %+v", evs)
	}
}

func TestNewAdvisoryAlertsAndFlagsRelease(t *testing.T) {
	data := t.TempDir()
	writeRepo(t, data, "acme/cache", genReleases(5), nil, []map[string]any{})
	st := tempStore(t)
	f := newFakeGitHub(t, os.DirFS(data), mirror.Options{})
	src := githubSource(t, f, "acme/cache", st, tracker.GitHubOptions{Advisories: true})
	tr := tracker.New(st, []tracker.Watch{{Source: src}}, tracker.Options{Keywords: keywords})
	if _, err := pollOne(t, tr); err != nil {
		t.Fatal(err)
	}
	writeRepo(t, data, "acme/cache", nil, nil, []map[string]any{advisory("GHSA-aaaa-bbbb-cccc", "1.0.3")})
	sr, err := pollOne(t, tr)
	if err != nil {
		t.Fatal(err)
	}
	if len(sr.NewAdvisories) != 1 || len(sr.NewReleases) != 0 {
		t.Fatalf("report = %+v", sr)
	}
	if got := keys(outbox(t, st)); !slices.Equal(got, []string{"tracking:acme/cache", "advisory:acme/cache:GHSA-aaaa-bbbb-cccc"}) {
		t.Errorf("outbox = %v", got)
	}
	// An advisory published after a release flags the release it names as patched.
	for _, r := range storedReleases(t, st, "acme/cache") {
		if want := r.Tag == "v1.0.3"; r.Security != want {
			t.Errorf("%s: Security = %v, reasons %v", r.Tag, r.Security, r.Reasons)
		}
	}
}

// TestConditionalRequests: an unchanged second poll costs one conditional request per
// endpoint and no rate-limit unit; a change on page 1 walks again; a full re-check happens
// after FullResync.
func TestConditionalRequests(t *testing.T) {
	data := t.TempDir()
	rels := genReleases(250)
	var tags, advs []map[string]any
	for i := range 230 {
		tags = append(tags, map[string]any{"name": fmt.Sprintf("v0.%d.0", i)})
	}
	for i := range 150 {
		advs = append(advs, advisory(fmt.Sprintf("GHSA-%04d-xxxx-xxxx", i), "9.9.9"))
	}
	writeRepo(t, data, "acme/big", rels, tags, advs)
	var clk clock
	f := newFakeGitHub(t, os.DirFS(data), mirror.Options{Now: clk.Now})
	st := tempStore(t)
	src := githubSource(t, f, "acme/big", st, tracker.GitHubOptions{Tags: true, Advisories: true, Now: clk.Now})
	tr := tracker.New(st, []tracker.Watch{{Source: src}}, tracker.Options{Now: clk.Now})

	sr, err := pollOne(t, tr)
	if err != nil {
		t.Fatal(err)
	}
	// 3 pages of releases, 3 of tags, 2 of advisories (cursor pagination).
	if sr.Releases != 480 || sr.Advisories != 150 || sr.Stats.Requests != 8 || f.mirror.Stats().Used != 8 {
		t.Fatalf("first poll: %d releases, %d advisories, stats %+v, mirror %+v", sr.Releases, sr.Advisories, sr.Stats, f.mirror.Stats())
	}

	sr, err = pollOne(t, tr)
	if err != nil {
		t.Fatal(err)
	}
	want := tracker.FetchStats{Requests: 3, NotModified: 3, Replayed: 5, RateRemaining: 5000 - 8}
	if sr.Outcome != tracker.OutcomeUnchanged || sr.Stats != want || f.mirror.Stats().Used != 8 {
		t.Errorf("unchanged poll: outcome %s, stats %+v (want %+v), mirror %+v", sr.Outcome, sr.Stats, want, f.mirror.Stats())
	}

	rels = append([]map[string]any{release("v9.0.0", "new", false)}, rels...)
	writeRepo(t, data, "acme/big", rels, nil, nil)
	sr, err = pollOne(t, tr)
	if err != nil {
		t.Fatal(err)
	}
	if len(sr.NewReleases) != 1 || sr.NewReleases[0].Tag != "v9.0.0" || sr.Stats.Requests != 5 {
		t.Errorf("after a new release: new %v, stats %+v", tagsOf(sr.NewReleases), sr.Stats)
	}

	// Past FullResync every page is asked again, conditionally: all 304, no unit spent.
	clk.Advance(25 * time.Hour)
	used := f.mirror.Stats().Used
	sr, err = pollOne(t, tr)
	if err != nil {
		t.Fatal(err)
	}
	if sr.Stats.Requests != 8 || sr.Stats.NotModified != 8 || sr.Stats.Replayed != 0 || f.mirror.Stats().Used != 0 {
		t.Errorf("full resync: stats %+v, units %d → %d", sr.Stats, used, f.mirror.Stats().Used)
	}
	// And the re-check restarted the FullResync period.
	if sr, _ = pollOne(t, tr); sr.Stats.Requests != 3 {
		t.Errorf("after resync: stats %+v", sr.Stats)
	}
}

func TestPrimaryRateLimitSurvivesRestart(t *testing.T) {
	var clk clock
	dbPath := filepath.Join(t.TempDir(), "patchctl.db")
	f := newFakeGitHub(t, os.DirFS(exampleDir), mirror.Options{Now: clk.Now})
	reset := clk.Now().Add(time.Hour).Truncate(time.Second)
	f.inject(pass, status(403, `{"message":"API rate limit exceeded for 127.0.0.1."}`,
		"X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10)))

	poll := func() (tracker.SourceReport, error) {
		st := openStore(t, dbPath)
		defer st.Close()
		src := githubSource(t, f, "acme/proxy", st, tracker.GitHubOptions{Tags: true, Advisories: true, Now: clk.Now})
		return pollOne(t, tracker.New(st, []tracker.Watch{{Source: src}}, tracker.Options{Now: clk.Now}))
	}
	sr, err := poll()
	if !errors.Is(err, tracker.ErrRateLimited) || sr.Outcome != tracker.OutcomeRateLimited || !sr.NotBefore.Equal(reset) {
		t.Fatalf("limited poll: err %v, report %+v", err, sr)
	}
	if n := f.requestCount(); n != 2 {
		t.Errorf("%d requests, want 2 (no retry of a primary limit)", n)
	}
	for range 2 { // the second one after a restart
		sr, err = poll()
		if !errors.Is(err, tracker.ErrRateLimited) || sr.Outcome != tracker.OutcomeDeferred || f.requestCount() != 2 {
			t.Errorf("before reset: err %v, outcome %s, %d requests", err, sr.Outcome, f.requestCount())
		}
	}
	st := openStore(t, dbPath)
	ps := pollState(t, st, "acme/proxy")
	n := len(storedReleases(t, st, "acme/proxy")) + len(outbox(t, st))
	st.Close()
	if !ps.NotBefore.Equal(reset) || ps.LastOutcome != tracker.OutcomeRateLimited || ps.ConsecutiveFailures != 1 {
		t.Errorf("poll state = %+v", ps)
	}
	if n != 0 {
		t.Errorf("a partial fetch recorded %d releases or alerts", n)
	}

	clk.Advance(time.Hour + time.Second)
	if sr, err = poll(); err != nil || !sr.First {
		t.Errorf("after reset: err %v, report %+v", err, sr)
	}
	st = openStore(t, dbPath)
	defer st.Close()
	if ps := pollState(t, st, "acme/proxy"); !ps.NotBefore.IsZero() || ps.ConsecutiveFailures != 0 {
		t.Errorf("poll state after success = %+v", ps)
	}
}

func TestSecondaryRateLimits(t *testing.T) {
	secondary := `{"message":"You have exceeded a secondary rate limit.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`
	cases := []struct {
		name     string
		fault    fault
		limited  time.Duration // 0: the poll waits and succeeds
		requests int
	}{
		{"429 short Retry-After", status(429, `{"message":"slow down"}`, "Retry-After", "1"), 0, 2},
		{"429 long Retry-After", status(429, `{"message":"slow down"}`, "Retry-After", "3600"), time.Hour, 1},
		{"429 with reset only", status(429, `{"message":"slow down"}`, "X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(2*time.Hour).Unix(), 10)), 2 * time.Hour, 1},
		{"403 secondary short", status(403, secondary, "Retry-After", "1"), 0, 2},
		{"403 secondary long", status(403, secondary, "Retry-After", "120"), 2 * time.Minute, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := tempStore(t)
			f := newFakeGitHub(t, os.DirFS(exampleDir), mirror.Options{})
			f.inject(c.fault)
			src := githubSource(t, f, "acme/proxy", st, tracker.GitHubOptions{})
			start := time.Now()
			sr, err := pollOne(t, tracker.New(st, []tracker.Watch{{Source: src}}, tracker.Options{}))
			if f.requestCount() != c.requests {
				t.Errorf("%d requests, want %d", f.requestCount(), c.requests)
			}
			if c.limited == 0 {
				if err != nil || time.Since(start) < time.Second {
					t.Errorf("err %v after %s; want success after waiting Retry-After", err, time.Since(start))
				}
				return
			}
			if !errors.Is(err, tracker.ErrRateLimited) || sr.Outcome != tracker.OutcomeRateLimited {
				t.Fatalf("err %v, outcome %s", err, sr.Outcome)
			}
			if d := sr.NotBefore.Sub(start); d < c.limited-5*time.Second || d > c.limited+5*time.Second {
				t.Errorf("NotBefore in %s, want %s", d, c.limited)
			}
		})
	}
}

func TestServerErrors(t *testing.T) {
	slow := func(w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done() // holds until the client gives up
		return true
	}
	cases := []struct {
		name    string
		faults  []fault
		opts    tracker.GitHubOptions
		wantErr string // "" = the poll succeeds
	}{
		{"500 then success", []fault{status(500, `{}`), status(502, `bad gateway`)}, tracker.GitHubOptions{}, ""},
		{"500 four times", []fault{status(500, `{}`), status(500, `{}`), status(500, `{}`), status(503, `{}`)}, tracker.GitHubOptions{}, "503"},
		{"slow answer", []fault{slow}, tracker.GitHubOptions{Timeout: 100 * time.Millisecond, Retries: -1}, "no answer within 100ms"},
		// The retry's answer must arrive within Timeout on a loaded machine too.
		{"slow then fast", []fault{slow}, tracker.GitHubOptions{Timeout: 5 * time.Second}, ""},
		{"malformed JSON", []fault{status(200, `[{"tag_name": "v1.0.0"`)}, tracker.GitHubOptions{}, "malformed JSON"},
		{"wrong JSON type", []fault{status(200, `{"tag_name": "v1.0.0"}`)}, tracker.GitHubOptions{}, "malformed JSON"},
		{"404", []fault{status(404, `{"message":"Not Found"}`)}, tracker.GitHubOptions{}, "404 Not Found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := tempStore(t)
			f := newFakeGitHub(t, os.DirFS(exampleDir), mirror.Options{})
			c.opts.Tags = true
			src := githubSource(t, f, "acme/proxy", st, c.opts)
			tr := tracker.New(st, []tracker.Watch{{Source: src}}, tracker.Options{})
			// A first good poll, so a failure has something to lose.
			if _, err := pollOne(t, tr); err != nil {
				t.Fatal(err)
			}
			before := storedReleases(t, st, "acme/proxy")
			f.inject(c.faults...)
			sr, err := pollOne(t, tr)
			if c.wantErr == "" {
				if err != nil || sr.Outcome != tracker.OutcomeUnchanged {
					t.Errorf("err %v, outcome %s", err, sr.Outcome)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || sr.Outcome != tracker.OutcomeError {
				t.Fatalf("err %v, outcome %s; want %q", err, sr.Outcome, c.wantErr)
			}
			if after := storedReleases(t, st, "acme/proxy"); len(after) != len(before) {
				t.Errorf("releases %d → %d after a failed poll", len(before), len(after))
			}
			if ps := pollState(t, st, "acme/proxy"); ps.ConsecutiveFailures != 1 || ps.LastOutcome != tracker.OutcomeError || ps.LastError == "" {
				t.Errorf("poll state = %+v", ps)
			}
			if got := keys(outbox(t, st)); len(got) != 1 {
				t.Errorf("outbox = %v", got)
			}
		})
	}
}

func TestFailingSourceDoesNotStopOthers(t *testing.T) {
	st := tempStore(t)
	f := newFakeGitHub(t, os.DirFS(exampleDir), mirror.Options{})
	missing := githubSource(t, f, "acme/missing", st, tracker.GitHubOptions{})
	dir := tracker.NewDir("acme/proxy", exampleDir, tracker.DirOptions{Tags: true, Advisories: true})
	reg := metrics.NewRegistry()
	tr := tracker.New(st, []tracker.Watch{{Source: missing}, {Source: dir, Prereleases: true}},
		tracker.Options{Metrics: tracker.NewMetrics(reg)})
	rep, err := tr.Poll(context.Background())
	if err == nil || !strings.Contains(err.Error(), "acme/missing") {
		t.Errorf("err = %v", err)
	}
	if len(rep.Sources) != 2 || rep.Sources[0].Outcome != tracker.OutcomeError || rep.Sources[1].Outcome != tracker.OutcomeOK {
		t.Fatalf("report = %+v", rep)
	}
	if l := rep.Sources[1].Latest; l == nil || l.Tag != "v2.0.0-rc1" {
		t.Errorf("latest with pre-releases = %+v", l)
	}
	var evs []store.Event
	if err := st.View(context.Background(), func(tx *store.Tx) (err error) {
		evs, err = tx.Events(store.EventFilter{Kind: "poll."})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Kind != "poll.failed" || evs[1].Kind != "poll.ok" {
		t.Errorf("events = %+v", evs)
	}
	if v := metric(t, reg, "patchctl_tracker_polls_total", "source", "acme/missing", "outcome", "error"); v != 1 {
		t.Errorf("polls_total{error} = %v", v)
	}
}

func TestMetrics(t *testing.T) {
	st := tempStore(t)
	reg := metrics.NewRegistry()
	m := tracker.NewMetrics(reg)
	f := newFakeGitHub(t, os.DirFS(exampleDir), mirror.Options{})
	src := githubSource(t, f, "acme/proxy", st, tracker.GitHubOptions{Tags: true, Metrics: m})
	tr := tracker.New(st, []tracker.Watch{{Source: src}}, tracker.Options{Metrics: m})
	for range 2 {
		if _, err := tr.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"patchctl_tracker_polls_total", []string{"source", "acme/proxy", "outcome", "ok"}, 1},
		{"patchctl_tracker_polls_total", []string{"source", "acme/proxy", "outcome", "unchanged"}, 1},
		{"patchctl_tracker_http_requests_total", []string{"endpoint", "releases", "code", "200"}, 1},
		{"patchctl_tracker_http_requests_total", []string{"endpoint", "tags", "code", "304"}, 1},
		{"patchctl_tracker_http_not_modified_total", []string{"endpoint", "releases"}, 1},
		{"patchctl_tracker_rate_limit_remaining", []string{"source", "acme/proxy"}, 4998},
	}
	for _, c := range checks {
		if got := metric(t, reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// metric returns the value of the series with the given label pairs (0 when absent).
func metric(t *testing.T, reg *metrics.Registry, name string, labels ...string) float64 {
	t.Helper()
	for _, f := range reg.Gather() {
		if f.Name != name {
			continue
		}
	series:
		for _, s := range f.Samples {
			have := map[string]string{}
			for _, l := range s.Labels {
				have[l.Name] = l.Value
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			return s.Value
		}
	}
	return 0
}

func TestTwemproxyHistory(t *testing.T) {
	st := tempStore(t)
	f := newFakeGitHub(t, mirror.Twemproxy(), mirror.Options{})
	src := githubSource(t, f, "twitter/twemproxy", st, tracker.GitHubOptions{Tags: true, Advisories: true})
	sr, err := pollOne(t, tracker.New(st, []tracker.Watch{{Source: src, Prereleases: true}}, tracker.Options{Keywords: keywords}))
	if err != nil {
		t.Fatal(err)
	}
	if sr.Releases != 15 || sr.Advisories != 0 || sr.Latest == nil || sr.Latest.Tag != "0.5.0" {
		t.Fatalf("report = %+v", sr)
	}
	rels := storedReleases(t, st, "twitter/twemproxy")
	tracker.SortReleases(rels)
	if got := strings.Join(tagsOf(rels[:4]), " "); got != "0.5.0 v0.5.0-RC1 v0.4.1 v0.4.0" {
		t.Errorf("order = %s", got)
	}
	if r := rels[0]; r.TagOnly || r.Prerelease || !r.Security || !slices.Contains(r.Reasons, "keyword:segfault") {
		t.Errorf("0.5.0 = %+v", r)
	}
	if r := rels[1]; r.TagOnly || !r.Prerelease {
		t.Errorf("v0.5.0-RC1 = %+v", r)
	}
	for _, r := range rels[2:] {
		if !r.TagOnly || r.Security {
			t.Errorf("%s = %+v, want a plain tag", r.Tag, r)
		}
	}
}

func TestNetworkErrorIsRetriedThenFails(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/"
	srv.Close() // nothing listens there any more
	g, err := tracker.NewGitHub("acme/proxy", tracker.GitHubOptions{APIURL: url, Retries: 2, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := g.Fetch(context.Background())
	if err == nil || strings.Contains(err.Error(), "no answer within") || snap.Stats.Requests != 3 || len(snap.Releases) != 0 {
		t.Errorf("err %v, stats %+v", err, snap.Stats)
	}
}
