package notify_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/notify/slack"
	"github.com/patchctl/patchctl/store"
)

// recordingHook is a Slack-like incoming webhook that keeps every message it accepts and
// answers 429 with Retry-After for the requests numbered in limited (1-based).
type recordingHook struct {
	mu      sync.Mutex
	texts   []string
	limited map[int]int // request number → Retry-After seconds
	n       int
}

func (h *recordingHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	if s, ok := h.limited[h.n]; ok {
		w.Header().Set("Retry-After", fmt.Sprint(s))
		http.Error(w, "rate_limited", http.StatusTooManyRequests)
		return
	}
	h.texts = append(h.texts, string(body))
	w.Write([]byte("ok"))
}

func (h *recordingHook) received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.texts...)
}

// fakeTime is a clock whose Sleep advances it and records the wait.
type fakeTime struct {
	clock
	slept []time.Duration
}

func (f *fakeTime) Sleep(_ context.Context, d time.Duration) error {
	f.slept = append(f.slept, d)
	f.Advance(d)
	return nil
}

func newDispatcher(t *testing.T, hook http.Handler, ft *fakeTime) (*notify.Dispatcher, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), store.Options{Now: ft.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	wh, err := slack.NewWebhook(srv.URL + "/services/T0/B0/secret")
	if err != nil {
		t.Fatal(err)
	}
	return &notify.Dispatcher{Store: st, Notifier: wh, MaxAttempts: 5, MinBackoff: time.Second, MaxBackoff: time.Minute,
		Gap: time.Second, DigestAfter: 10, Now: ft.Now, Sleep: ft.Sleep}, st
}

// TestBurstBecomesOneDigest: 250 releases appearing at once (a mirror reset) reach Slack
// as one message; each alert is recorded as sent, and a later lone alert goes out alone.
func TestBurstBecomesOneDigest(t *testing.T) {
	ft := &fakeTime{clock: clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}}
	hook := &recordingHook{}
	d, st := newDispatcher(t, hook, ft)
	for i := range 250 {
		enqueueRelease(t, st, fmt.Sprintf("0.%d.0", i))
	}
	res, err := d.Flush(context.Background())
	if err != nil || res.Sent != 250 || res.Digests != 1 {
		t.Fatalf("flush = %+v, %v", res, err)
	}
	got := hook.received()
	if len(got) != 1 {
		t.Fatalf("Slack got %d messages, want 1 digest", len(got))
	}
	for _, want := range []string{"250 alerts at once, 250 security-relevant", "0.0.0 released", "225 more"} {
		if !strings.Contains(got[0], want) {
			t.Errorf("digest lacks %q:\n%.600s", want, got[0])
		}
	}
	for _, it := range pending(t, st) {
		if it.SentAt.IsZero() {
			t.Fatalf("item %d not recorded as sent", it.ID)
		}
	}
	enqueueRelease(t, st, "1.0.0")
	if res, _ := d.Flush(context.Background()); res.Sent != 1 || res.Digests != 0 {
		t.Fatalf("lone alert flush = %+v", res)
	}
	if got := hook.received(); len(got) != 2 || !strings.Contains(got[1], "1.0.0 released") {
		t.Fatalf("lone alert not sent on its own: %d messages", len(got))
	}
}

// TestPostingRate: messages are spaced by Gap, and a 429 holds every message back for
// its Retry-After, not only the one refused.
func TestPostingRate(t *testing.T) {
	ft := &fakeTime{clock: clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}}
	hook := &recordingHook{limited: map[int]int{4: 30}}
	d, st := newDispatcher(t, hook, ft)
	for _, v := range []string{"0.1.0", "0.2.0", "0.3.0"} {
		enqueueRelease(t, st, v)
	}
	if res, err := d.Flush(context.Background()); err != nil || res.Sent != 3 {
		t.Fatalf("flush = %+v, %v", res, err)
	}
	var total time.Duration
	for _, s := range ft.slept {
		total += s
	}
	if total < 2*time.Second {
		t.Fatalf("3 messages went out within %s, want >= 2s (1 per second)", total)
	}

	// The 4th request is refused with Retry-After 30 s.
	for _, v := range []string{"0.4.0", "0.5.0"} {
		enqueueRelease(t, st, v)
	}
	if res, _ := d.Flush(context.Background()); res.Retrying != 1 || res.Sent != 0 {
		t.Fatalf("rate-limited flush = %+v", res)
	}
	ft.Advance(10 * time.Second)
	if res, _ := d.Flush(context.Background()); res != (notify.FlushResult{}) {
		t.Fatalf("flush during Retry-After = %+v, want nothing sent", res)
	}
	ft.Advance(25 * time.Second)
	if res, _ := d.Flush(context.Background()); res.Sent != 2 {
		t.Fatalf("flush after Retry-After = %+v", res)
	}
}

// TestBackoffNeverExceedsMax: with jitter, the wait before a retry stays within
// max_backoff, however many attempts failed.
func TestBackoffNeverExceedsMax(t *testing.T) {
	ft := &fakeTime{clock: clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}}
	answers := make([]int, 200)
	for i := range answers {
		answers[i] = http.StatusInternalServerError
	}
	d, st := newDispatcher(t, &slackHook{answers: answers}, ft)
	d.MaxAttempts, d.MinBackoff, d.MaxBackoff = 1000, time.Minute, time.Minute
	enqueueRelease(t, st, "0.5.0")
	for range 100 {
		if res, err := d.Flush(context.Background()); err != nil || res.Retrying != 1 {
			t.Fatalf("flush = %+v, %v", res, err)
		}
		it := pending(t, st)[0]
		if wait := it.NextAttempt.Sub(ft.Now()); wait > d.MaxBackoff || wait < d.MaxBackoff*4/5 {
			t.Fatalf("attempt %d: next in %s, want within [%s, %s]", it.Attempts, wait, d.MaxBackoff*4/5, d.MaxBackoff)
		}
		ft.Advance(time.Hour)
	}
}
