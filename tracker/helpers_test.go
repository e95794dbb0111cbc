package tracker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/mirror"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/tracker"
)

// basePath is where the fake API is mounted, as go-github's own tests do: a request that
// lost it (an absolute path built by hand) fails the test.
const basePath = "/api-v3/"

// fakeGitHub is the mirror handler behind an httptest server, with failure injection.
type fakeGitHub struct {
	t      testing.TB
	mirror *mirror.Server
	srv    *httptest.Server
	URL    string

	mu       sync.Mutex
	faults   []fault
	requests []string
}

// fault answers a request instead of the mirror when it returns true.
type fault func(w http.ResponseWriter, r *http.Request) bool

func newFakeGitHub(t testing.TB, fsys fs.FS, opts mirror.Options) *fakeGitHub {
	t.Helper()
	f := &fakeGitHub{t: t, mirror: mirror.New(fsys, opts)}
	api := http.StripPrefix(strings.TrimSuffix(basePath, "/"), f.mirror)
	mux := http.NewServeMux()
	mux.HandleFunc(basePath, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.URL.RequestURI())
		var next fault
		if len(f.faults) > 0 {
			next, f.faults = f.faults[0], f.faults[1:]
		}
		f.mu.Unlock()
		if next != nil && next(w, r) {
			return
		}
		api.ServeHTTP(w, r)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request outside the API base path: %s", r.URL)
		http.NotFound(w, r)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.URL = f.srv.URL + basePath
	return f
}

// inject queues faults, consumed one per request in order.
func (f *fakeGitHub) inject(faults ...fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, faults...)
}

func (f *fakeGitHub) requestCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

// status answers with a code, headers and a body.
func status(code int, body string, headers ...string) fault {
	return func(w http.ResponseWriter, r *http.Request) bool {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprint(w, body)
		return true
	}
}

// pass lets one request through to the mirror.
func pass(http.ResponseWriter, *http.Request) bool { return false }

// clock is a wall clock that tests can move forward.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

func openStore(t testing.TB, path string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// tempStore opens a store closed at the end of the test.
func tempStore(t testing.TB) *store.Store {
	st := openStore(t, filepath.Join(t.TempDir(), "patchctl.db"))
	t.Cleanup(func() { st.Close() })
	return st
}

// githubSource points a GitHub source at the fake with fast retries.
func githubSource(t testing.TB, f *fakeGitHub, repo string, st *store.Store, opts tracker.GitHubOptions) *tracker.GitHub {
	t.Helper()
	opts.APIURL = f.URL
	opts.Store = st
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Backoff == 0 {
		opts.Backoff = 10 * time.Millisecond
	}
	g, err := tracker.NewGitHub(repo, opts)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// writeRepo writes a repository's data files (nil slices are left out).
func writeRepo(t testing.TB, root, repo string, releases, tags, advisories []map[string]any) {
	t.Helper()
	dir := filepath.Join(root, "repos", filepath.FromSlash(repo))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for file, items := range map[string][]map[string]any{
		"releases.json": releases, "tags.json": tags, "security-advisories.json": advisories} {
		if items == nil {
			continue
		}
		data, err := json.Marshal(items)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// genReleases makes n releases v1.0.0 … newest first, as GitHub lists them.
func genReleases(n int) []map[string]any {
	out := make([]map[string]any, 0, n)
	for i := n - 1; i >= 0; i-- {
		out = append(out, release(fmt.Sprintf("v1.%d.%d", i/10, i%10), "routine release", false))
	}
	return out
}

func release(tag, body string, pre bool) map[string]any {
	return map[string]any{"tag_name": tag, "name": tag, "body": body, "draft": false, "prerelease": pre,
		"published_at": "2024-01-01T00:00:00Z"}
}

func advisory(id, patched string) map[string]any {
	return map[string]any{"ghsa_id": id, "summary": "problem " + id, "severity": "high", "state": "published",
		"vulnerabilities": []map[string]any{{"vulnerable_version_range": "< " + patched, "patched_versions": patched}}}
}

func outbox(t testing.TB, st *store.Store) []store.OutboxItem {
	t.Helper()
	items, err := st.Outbox(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func pollState(t testing.TB, st *store.Store, source string) store.PollState {
	t.Helper()
	var p store.PollState
	if err := st.View(context.Background(), func(tx *store.Tx) (err error) {
		p, err = tx.PollState(source)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return p
}

func storedReleases(t testing.TB, st *store.Store, source string) []store.Release {
	t.Helper()
	var rs []store.Release
	if err := st.View(context.Background(), func(tx *store.Tx) (err error) {
		rs, err = tx.Releases(source)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return rs
}

func keys(items []store.OutboxItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Key)
	}
	return out
}

var keywords = config.DefaultSecurityKeywords
