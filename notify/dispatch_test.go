package notify_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/notify/slack"
	"github.com/patchctl/patchctl/store"
)

// slackHook is a Slack-like incoming webhook whose answers the test scripts.
type slackHook struct {
	mu      sync.Mutex
	answers []int // status codes to give, in order; then 200
	got     int   // requests received
}

func (h *slackHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got++
	status := http.StatusOK
	if len(h.answers) > 0 {
		status, h.answers = h.answers[0], h.answers[1:]
	}
	switch status {
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(status)
	case http.StatusOK:
		w.Write([]byte("ok"))
	case http.StatusBadRequest:
		w.WriteHeader(status)
		w.Write([]byte("invalid_payload"))
	default:
		w.WriteHeader(status)
	}
}

func (h *slackHook) requests() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got
}

type clock struct{ t time.Time }

func (c *clock) Now() time.Time          { return c.t }
func (c *clock) Advance(d time.Duration) { c.t = c.t.Add(d) }

func enqueueRelease(t *testing.T, st *store.Store, version string) {
	t.Helper()
	payload, err := notify.Envelope{Kind: "release.new", Release: &store.Release{
		Source: "twitter/twemproxy", Tag: version, Version: version, URL: "https://github.com/twitter/twemproxy/releases/tag/" + version,
		Notes: "fix segfault when all hosts are ejected", Security: true, Reasons: []string{"segfault"},
	}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(context.Background(), func(tx *store.Tx) error {
		_, err := tx.Enqueue("release:twitter/twemproxy:"+version, payload)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func pending(t *testing.T, st *store.Store) []store.OutboxItem {
	t.Helper()
	items, err := st.Outbox(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func TestDispatcherRetriesAndSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	clk := &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	st, err := store.Open(ctx, path, store.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	hook := &slackHook{answers: []int{http.StatusTooManyRequests, http.StatusInternalServerError}}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	wh, err := slack.NewWebhook(srv.URL + "/services/T0/B0/secret")
	if err != nil {
		t.Fatal(err)
	}
	d := &notify.Dispatcher{Store: st, Notifier: wh, MaxAttempts: 5, MinBackoff: time.Second, MaxBackoff: time.Minute, Now: clk.Now}
	enqueueRelease(t, st, "0.5.0")

	// 1: 429 with Retry-After 30 -> retry no sooner than 30 s.
	res, err := d.Flush(ctx)
	if err != nil || res.Retrying != 1 {
		t.Fatalf("flush 1 = %+v, %v", res, err)
	}
	it := pending(t, st)[0]
	if wait := it.NextAttempt.Sub(clk.Now()); wait < 30*time.Second {
		t.Fatalf("next attempt in %s, want >= Retry-After 30s", wait)
	}
	// Not due yet: nothing is sent.
	clk.Advance(10 * time.Second)
	if res, _ := d.Flush(ctx); res != (notify.FlushResult{}) || hook.requests() != 1 {
		t.Fatalf("flush before due = %+v, requests %d", res, hook.requests())
	}
	// 2: 500 -> retry with backoff.
	clk.Advance(time.Minute)
	if res, _ := d.Flush(ctx); res.Retrying != 1 {
		t.Fatalf("flush 2 = %+v", res)
	}
	// Restart the daemon (close and reopen the store) before the next try.
	st.Close()
	st, err = store.Open(ctx, path, store.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d.Store = st
	clk.Advance(time.Hour)
	if res, _ := d.Flush(ctx); res.Sent != 1 {
		t.Fatalf("flush 3 = %+v", res)
	}
	// Sent exactly once: later passes and a re-enqueue of the same release send nothing.
	enqueueRelease(t, st, "0.5.0")
	clk.Advance(time.Hour)
	if res, _ := d.Flush(ctx); res != (notify.FlushResult{}) {
		t.Fatalf("flush after send = %+v", res)
	}
	if hook.requests() != 3 {
		t.Fatalf("webhook got %d requests, want 3", hook.requests())
	}
	it = pending(t, st)[0]
	if it.SentAt.IsZero() || it.Attempts != 3 {
		t.Fatalf("item = %+v", it)
	}
	var evs []store.Event
	st.View(ctx, func(tx *store.Tx) (err error) { evs, err = tx.Events(store.EventFilter{Kind: "notify."}); return })
	if len(evs) != 3 || evs[2].Kind != "notify.sent" {
		t.Fatalf("events = %+v", evs)
	}
}

func TestDispatcherGivesUp(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name     string
		answers  []int
		attempts int
	}{
		{"permanent error", []int{http.StatusBadRequest}, 1},
		{"too many retryable errors", []int{500, 500, 500, 500}, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
			st, err := store.Open(ctx, filepath.Join(t.TempDir(), "s.db"), store.Options{Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			srv := httptest.NewServer(&slackHook{answers: c.answers})
			defer srv.Close()
			wh, _ := slack.NewWebhook(srv.URL + "/services/x")
			d := &notify.Dispatcher{Store: st, Notifier: wh, MaxAttempts: 3, MinBackoff: time.Second, MaxBackoff: time.Minute, Now: clk.Now}
			enqueueRelease(t, st, "0.5.0")
			for range 10 {
				d.Flush(ctx)
				clk.Advance(time.Hour)
			}
			it := pending(t, st)[0]
			if it.GaveUpAt.IsZero() || it.Attempts != c.attempts || it.LastError == "" {
				t.Fatalf("item = %+v", it)
			}
		})
	}
}

func TestRender(t *testing.T) {
	cases := []struct {
		name, payload, title string
		security             bool
		err                  bool
	}{
		{"release", `{"kind":"release.new","release":{"source":"twitter/twemproxy","tag":"0.5.0","version":"0.5.0"}}`, "twitter/twemproxy 0.5.0 released", false, false},
		{"pre-release", `{"kind":"release.new","release":{"source":"a/b","tag":"v0.5.0-RC1","version":"0.5.0-RC1","prerelease":true}}`, "a/b 0.5.0-RC1 pre-release published", false, false},
		{"advisory", `{"kind":"advisory.new","advisory":{"source":"a/b","id":"GHSA-1","summary":"crash"}}`, "Security advisory for a/b: crash", true, false},
		{"tracking", `{"kind":"tracking.start","source":"a/b","count":15,"latest":{"version":"0.5.0"}}`, "patchctl now tracks a/b", false, false},
		{"ready message", `{"kind":"deploy.rolled_back","message":{"kind":"rollback","title":"h1 rolled back"}}`, "h1 rolled back", false, false},
		{"unknown", `{"kind":"mystery"}`, "", false, true},
		{"garbage", `{`, "", false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := notify.Render([]byte(c.payload))
			if (err != nil) != c.err || m.Title != c.title || m.Security != c.security {
				t.Fatalf("Render = %+v, %v", m, err)
			}
		})
	}
}
