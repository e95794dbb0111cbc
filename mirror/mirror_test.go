package mirror_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/patchctl/patchctl/mirror"
)

const prefix = "/api-v3"

// serve mounts s under a non-empty prefix, as a GitHub Enterprise API root would be.
func serve(t *testing.T, s *mirror.Server) string {
	t.Helper()
	srv := httptest.NewServer(http.StripPrefix(prefix, s))
	t.Cleanup(srv.Close)
	return srv.URL + prefix
}

func items(n int, key string) []byte {
	var out []map[string]string
	for i := range n {
		out = append(out, map[string]string{key: fmt.Sprintf("v%d", i)})
	}
	b, _ := json.Marshal(out)
	return b
}

func get(t *testing.T, rawURL string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func count(t *testing.T, body []byte) int {
	t.Helper()
	var list []json.RawMessage
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return len(list)
}

var reLink = regexp.MustCompile(`<([^>]+)>; rel="(\w+)"`)

func links(h http.Header) map[string]string {
	out := map[string]string{}
	for _, m := range reLink.FindAllStringSubmatch(h.Get("Link"), -1) {
		out[m[2]] = m[1]
	}
	return out
}

func TestPagination(t *testing.T) {
	base := serve(t, mirror.New(fstest.MapFS{
		"repos/acme/proxy/releases.json": {Data: items(250, "tag_name")},
	}, mirror.Options{}))
	cases := []struct {
		query string
		n     int
		rels  map[string]string // rel → page
	}{
		{"", 30, map[string]string{"next": "2", "last": "9"}},
		{"?per_page=100", 100, map[string]string{"next": "2", "last": "3"}},
		{"?per_page=100&page=2", 100, map[string]string{"next": "3", "last": "3", "prev": "1", "first": "1"}},
		{"?per_page=100&page=3", 50, map[string]string{"prev": "2", "first": "1"}},
		{"?per_page=100&page=7", 0, map[string]string{"prev": "3", "first": "1"}},
		{"?per_page=1000", 100, map[string]string{"next": "2", "last": "3"}},
		{"?per_page=x&page=y", 30, map[string]string{"next": "2", "last": "9"}},
	}
	for _, c := range cases {
		resp, body := get(t, base+"/repos/acme/proxy/releases"+c.query)
		if resp.StatusCode != 200 || count(t, body) != c.n {
			t.Errorf("%s: status %d, %d items, want %d", c.query, resp.StatusCode, count(t, body), c.n)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("%s: content type %q", c.query, ct)
		}
		got := links(resp.Header)
		if len(got) != len(c.rels) {
			t.Errorf("%s: links %v, want %v", c.query, got, c.rels)
		}
		for rel, page := range c.rels {
			u, err := url.Parse(got[rel])
			if err != nil || u.Query().Get("page") != page || !strings.HasPrefix(got[rel], base+"/repos/acme/proxy/releases?") {
				t.Errorf("%s: rel %s = %q, want page %s under %s", c.query, rel, got[rel], page, base)
			}
		}
	}
}

func TestAdvisoryCursors(t *testing.T) {
	base := serve(t, mirror.New(fstest.MapFS{
		"repos/acme/proxy/security-advisories.json": {Data: items(150, "ghsa_id")},
	}, mirror.Options{}))
	resp, body := get(t, base+"/repos/acme/proxy/security-advisories?per_page=100")
	next := links(resp.Header)["next"]
	if count(t, body) != 100 || next == "" || links(resp.Header)["last"] != "" {
		t.Fatalf("page 1: %d items, links %q", count(t, body), resp.Header.Get("Link"))
	}
	if u, _ := url.Parse(next); u.Query().Get("after") == "" || u.Query().Get("page") != "" {
		t.Errorf("next link %q is not a cursor", next)
	}
	resp, body = get(t, next)
	if count(t, body) != 50 || resp.Header.Get("Link") != "" {
		t.Errorf("page 2: %d items, Link %q", count(t, body), resp.Header.Get("Link"))
	}
	if resp, _ := get(t, base+"/repos/acme/proxy/security-advisories?after=bogus"); resp.StatusCode != 400 {
		t.Errorf("bad cursor: status %d", resp.StatusCode)
	}
}

func TestConditionalRequestsSpendNothing(t *testing.T) {
	s := mirror.New(fstest.MapFS{"repos/acme/proxy/tags.json": {Data: items(3, "name")}}, mirror.Options{})
	base := serve(t, s)
	u := base + "/repos/acme/proxy/tags"
	resp, _ := get(t, u)
	etag := resp.Header.Get("ETag")
	if !regexp.MustCompile(`^"[0-9a-f]{32}"$`).MatchString(etag) {
		t.Fatalf("ETag %q is not strong", etag)
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		resp, body := get(t, u, "If-None-Match", inm)
		if resp.StatusCode != 304 || len(body) != 0 || resp.Header.Get("ETag") != etag {
			t.Errorf("If-None-Match %s: status %d, body %q", inm, resp.StatusCode, body)
		}
		if resp.Header.Get("X-RateLimit-Remaining") != "4999" || resp.Header.Get("X-RateLimit-Used") != "1" {
			t.Errorf("If-None-Match %s: a 304 spent a unit: %v", inm, resp.Header)
		}
	}
	if resp, _ := get(t, u, "If-None-Match", `"other"`); resp.StatusCode != 200 {
		t.Errorf("stale ETag: status %d", resp.StatusCode)
	}
	if got := s.Stats(); got != (mirror.Stats{Requests: 6, NotModified: 4, Used: 2}) {
		t.Errorf("stats = %+v", got)
	}
}

func TestRateLimit(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	base := serve(t, mirror.New(fstest.MapFS{"repos/acme/proxy/releases.json": {Data: items(1, "tag_name")}},
		mirror.Options{RateLimit: 2, Window: time.Hour, Now: clock}))
	u := base + "/repos/acme/proxy/releases"
	for i, want := range []string{"1", "0"} {
		resp, _ := get(t, u)
		if resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Remaining") != want || resp.Header.Get("X-RateLimit-Limit") != "2" {
			t.Errorf("request %d: status %d, remaining %s", i, resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining"))
		}
	}
	resp, body := get(t, u)
	if resp.StatusCode != 403 || resp.Header.Get("X-RateLimit-Remaining") != "0" || !strings.Contains(string(body), "rate limit exceeded") {
		t.Errorf("exhausted: status %d, body %s", resp.StatusCode, body)
	}
	if reset := resp.Header.Get("X-RateLimit-Reset"); reset != fmt.Sprint(now.Add(time.Hour).Unix()) {
		t.Errorf("reset = %s", reset)
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	if resp, _ := get(t, u); resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Remaining") != "1" {
		t.Errorf("after reset: status %d, remaining %s", resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining"))
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repos", "acme", "proxy")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "releases.json"), []byte(`{"not": "a list"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	base := serve(t, mirror.New(os.DirFS(dir), mirror.Options{}))
	cases := []struct {
		path string
		code int
		body string
	}{
		{"/repos/acme/proxy/tags", 200, "[]"}, // no file: an empty list
		{"/repos/acme/proxy/releases", 500, "repos/acme/proxy/releases.json: not a JSON array"},
		{"/repos/acme/other/releases", 404, `"message":"Not Found"`},
		{"/repos/acme/proxy/pulls", 404, `"message":"Not Found"`},
		{"/repos/acme/../proxy/releases", 404, ""},
		{"/users/acme", 404, `"message":"Not Found"`},
	}
	for _, c := range cases {
		resp, body := get(t, base+c.path)
		if resp.StatusCode != c.code || !strings.Contains(string(body), c.body) {
			t.Errorf("%s: %d %s, want %d %s", c.path, resp.StatusCode, body, c.code, c.body)
		}
	}

	// The directory may be updated while serving.
	if err := os.WriteFile(filepath.Join(repo, "releases.json"), items(2, "tag_name"), 0o644); err != nil {
		t.Fatal(err)
	}
	if resp, body := get(t, base+"/repos/acme/proxy/releases"); resp.StatusCode != 200 || count(t, body) != 2 {
		t.Errorf("after fixing the file: %d %s", resp.StatusCode, body)
	}
}

func TestTwemproxy(t *testing.T) {
	base := serve(t, mirror.New(mirror.Twemproxy(), mirror.Options{}))
	var tags []struct{ Name string }
	_, body := get(t, base+"/repos/twitter/twemproxy/tags?per_page=100")
	if err := json.Unmarshal(body, &tags); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tg := range tags {
		names = append(names, tg.Name)
	}
	want := "0.5.0 v0.5.0-RC1 v0.4.1 v0.4.0 v0.3.0 v0.2.4 v0.2.3 v0.2.2 v0.2.1 v0.2.0 v0.1.20 v0.1.19 v0.1.18 v0.1.17 v0.1.16"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("tags = %s", got)
	}
	var rels []struct {
		TagName    string `json:"tag_name"`
		Prerelease bool
		Draft      bool
		Body       string
	}
	_, body = get(t, base+"/repos/twitter/twemproxy/releases")
	if err := json.Unmarshal(body, &rels); err != nil {
		t.Fatal(err)
	}
	if len(rels) != 2 || rels[0].TagName != "0.5.0" || rels[0].Prerelease || rels[1].TagName != "v0.5.0-RC1" || !rels[1].Prerelease {
		t.Errorf("releases = %+v", rels)
	}
	if !strings.Contains(strings.ToLower(rels[0].Body), "segfault") {
		t.Error("0.5.0's notes do not mention the segfault fix")
	}
	if _, body := get(t, base+"/repos/twitter/twemproxy/security-advisories"); string(body) != "[]" {
		t.Errorf("advisories = %s", body)
	}
}
