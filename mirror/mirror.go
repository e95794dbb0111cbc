// Package mirror serves a directory laid out like GitHub's REST API the way GitHub serves it:
// releases, tags and repository security advisories of each repository, paginated with Link
// headers, with strong ETags, 304 answers to conditional requests and X-RateLimit headers.
// It lets air-gapped daemons poll a mirror instead of GitHub, and it is the fake GitHub of
// the tests and the demo.
//
// Layout: repos/<owner>/<repo>/releases.json, tags.json, security-advisories.json, each a
// JSON array in GitHub's shapes. A repository directory without one of the files serves an
// empty list, as GitHub does for a repository without releases.
package mirror

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// endpoints maps each endpoint to the file it serves.
var endpoints = map[string]string{
	"releases":            "releases.json",
	"tags":                "tags.json",
	"security-advisories": "security-advisories.json",
}

const (
	defaultPerPage = 30
	maxPerPage     = 100
	docsURL        = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
)

var reName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.-]+$`) })

// Options tune a Server.
type Options struct {
	// RateLimit is the number of units per window (default 5000, GitHub's authenticated limit).
	RateLimit int
	// Window is how long a rate-limit window lasts (default 1h).
	Window time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Stats counts what a Server answered since it started.
type Stats struct {
	Requests    int // every request, 304s included
	NotModified int // 304 answers
	Used        int // rate-limit units spent (in the current window)
}

// Server is an http.Handler serving one directory tree. Mount it at the API root; it builds
// Link headers from the request URI, so it also works behind http.StripPrefix.
type Server struct {
	fsys fs.FS
	opts Options
	mux  *http.ServeMux

	mu          sync.Mutex
	used        int
	reset       time.Time
	requests    int
	notModified int
	files       map[string]cachedFile
}

type cachedFile struct {
	modTime time.Time
	size    int64
	items   []json.RawMessage
}

// New returns a Server for fsys (for a directory: os.DirFS(dir)).
func New(fsys fs.FS, opts Options) *Server {
	if opts.RateLimit <= 0 {
		opts.RateLimit = 5000
	}
	if opts.Window <= 0 {
		opts.Window = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{fsys: fsys, opts: opts, files: map[string]cachedFile{}}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /repos/{owner}/{repo}/{kind}", s.list)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.spend(w, true)
		writeError(w, http.StatusNotFound, "Not Found")
	})
	return s
}

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Requests: s.requests, NotModified: s.notModified, Used: s.used}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// spend sets the X-RateLimit headers, spending one unit when charge is true. It reports
// false (and answers 403 as GitHub does) when the window is exhausted.
func (s *Server) spend(w http.ResponseWriter, charge bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	now := s.opts.Now()
	if !now.Before(s.reset) {
		s.used, s.reset = 0, now.Add(s.opts.Window)
	}
	exhausted := s.used >= s.opts.RateLimit
	if charge && !exhausted {
		s.used++
	}
	if !charge && !exhausted {
		s.notModified++
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.opts.RateLimit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(s.opts.RateLimit-s.used))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(s.reset.Unix(), 10))
	h.Set("X-RateLimit-Used", strconv.Itoa(s.used))
	h.Set("X-RateLimit-Resource", "core")
	if exhausted {
		writeJSON(w, http.StatusForbidden, map[string]string{
			"message":           "API rate limit exceeded.",
			"documentation_url": docsURL,
		})
		return false
	}
	return true
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	owner, repo, kind := r.PathValue("owner"), r.PathValue("repo"), r.PathValue("kind")
	file, ok := endpoints[kind]
	dir := path.Join("repos", owner, repo)
	if ok && reName().MatchString(owner) && reName().MatchString(repo) && owner != ".." && repo != ".." {
		st, err := fs.Stat(s.fsys, dir)
		ok = err == nil && st.IsDir()
	}
	if !ok {
		if s.spend(w, true) {
			writeError(w, http.StatusNotFound, "Not Found")
		}
		return
	}
	items, err := s.load(path.Join(dir, file))
	if err != nil {
		if s.spend(w, true) {
			writeError(w, http.StatusInternalServerError, err.Error())
		}
		return
	}

	q := r.URL.Query()
	perPage := intParam(q, "per_page", defaultPerPage)
	perPage = min(max(perPage, 1), maxPerPage)
	var start int
	var links []string
	if kind == "security-advisories" {
		// GitHub pages repository advisories with opaque cursors, not page numbers.
		start, ok = decodeCursor(q.Get("after"))
		if !ok || start > len(items) {
			if s.spend(w, true) {
				writeError(w, http.StatusBadRequest, "invalid after cursor")
			}
			return
		}
		if start+perPage < len(items) {
			links = append(links, link(r, q, "after", encodeCursor(start+perPage), "next"))
		}
	} else {
		page := max(intParam(q, "page", 1), 1)
		last := max((len(items)+perPage-1)/perPage, 1)
		start = min((page-1)*perPage, len(items))
		if page < last {
			links = append(links,
				link(r, q, "page", strconv.Itoa(page+1), "next"),
				link(r, q, "page", strconv.Itoa(last), "last"))
		}
		if page > 1 {
			links = append(links,
				link(r, q, "page", strconv.Itoa(min(page-1, last)), "prev"),
				link(r, q, "page", "1", "first"))
		}
	}
	body := encodeItems(items[start:min(start+perPage, len(items))])
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`

	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "private, max-age=60")
	h.Set("Vary", "Accept, Authorization")
	if len(links) > 0 {
		h.Set("Link", strings.Join(links, ", "))
	}
	if etagMatch(r.Header.Get("If-None-Match"), etag) {
		if s.spend(w, false) {
			w.WriteHeader(http.StatusNotModified)
		}
		return
	}
	if !s.spend(w, true) {
		return
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// load reads a data file once and again only when its size or time changes, so a mirror
// directory can be updated in place while serving.
func (s *Server) load(name string) ([]json.RawMessage, error) {
	st, err := fs.Stat(s.fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s.mu.Lock()
	c, ok := s.files[name]
	s.mu.Unlock()
	if ok && c.modTime.Equal(st.ModTime()) && c.size == st.Size() {
		return c.items, nil
	}
	data, err := fs.ReadFile(s.fsys, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil {
		return nil, fmt.Errorf("%s: not a JSON array: %v", name, err)
	}
	for i, it := range items {
		var b bytes.Buffer
		if err := json.Compact(&b, it); err != nil {
			return nil, fmt.Errorf("%s: item %d: %v", name, i, err)
		}
		items[i] = b.Bytes()
	}
	s.mu.Lock()
	s.files[name] = cachedFile{modTime: st.ModTime(), size: st.Size(), items: items}
	s.mu.Unlock()
	return items, nil
}

func encodeItems(items []json.RawMessage) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func intParam(q url.Values, name string, def int) int {
	n, err := strconv.Atoi(q.Get(name))
	if err != nil {
		return def
	}
	return n
}

func encodeCursor(i int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("cursor:" + strconv.Itoa(i)))
}

func decodeCursor(c string) (int, bool) {
	if c == "" {
		return 0, true
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(raw), "cursor:"))
	return n, err == nil && n >= 0 && strings.HasPrefix(string(raw), "cursor:")
}

// link builds one Link entry pointing at the request's own URL (mount prefix included)
// with one query parameter replaced.
func link(r *http.Request, q url.Values, key, value, rel string) string {
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil {
		u = &url.URL{Path: r.URL.Path}
	}
	u.Scheme, u.Host = "http", r.Host
	if r.TLS != nil {
		u.Scheme = "https"
	}
	nq := url.Values{}
	for k, v := range q {
		nq[k] = v
	}
	nq.Set(key, value)
	u.RawQuery = nq.Encode()
	return fmt.Sprintf("<%s>; rel=%q", u, rel)
}

// etagMatch applies If-None-Match's weak comparison.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"message": msg, "documentation_url": "https://docs.github.com/rest"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, _ := json.Marshal(v) // maps of strings always encode
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	w.Write(body)
}
