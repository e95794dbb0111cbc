package slack_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/patchctl/patchctl/notify/notifytest"
)

// Secrets of the fakes: the webhook path and the bot token.
const (
	hookPath    = "/services/T0PATCH/B0CTL/s3cr3tW3bh00kT0k3n"
	botToken    = "xoxb-1111-2222-s3cr3tB0tT0k3n"
	botChannel  = "#twemproxy-alerts"
	channelID   = "C0PATCHCTL"
	postMessage = "/api/chat.postMessage"
)

// fakeSlack answers like Slack's incoming webhooks and chat.postMessage, enforcing the
// Block Kit limits Slack enforces, and fails as told.
type fakeSlack struct {
	srv   *httptest.Server
	fault notifytest.Fault

	mu       sync.Mutex
	received []string
	posts    int // messages chat.postMessage accepted, for distinct timestamps
}

func newFakeSlack(t *testing.T, fault notifytest.Fault) *fakeSlack {
	f := &fakeSlack{fault: fault}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+hookPath, f.webhook)
	mux.HandleFunc("POST "+postMessage, f.postMessage)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no_service", http.StatusNotFound) // what Slack says for a revoked hook
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	if fault == notifytest.Down {
		f.srv.Close()
	}
	return f
}

func (f *fakeSlack) Received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.received...)
}

func (f *fakeSlack) accept(payload string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.received = append(f.received, payload)
}

// misbehave answers per the fault; it reports whether it answered.
func (f *fakeSlack) misbehave(w http.ResponseWriter, r *http.Request, reject func()) bool {
	switch f.fault {
	case notifytest.RateLimited:
		w.Header().Set("Retry-After", strconv.Itoa(notifytest.RetryAfterSeconds))
		http.Error(w, "rate_limited", http.StatusTooManyRequests)
	case notifytest.ServerError:
		// Slack sends an HTML page with its 5xx answers.
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "<html><body>Internal Server Error</body></html>")
	case notifytest.Slow:
		// Only once the body is read does the server notice the client hang up.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(notifytest.SlowDelay):
		}
		return true
	case notifytest.Rejected:
		reject()
	default:
		return false
	}
	return true
}

func (f *fakeSlack) webhook(w http.ResponseWriter, r *http.Request) {
	if f.misbehave(w, r, func() { http.Error(w, "channel_is_archived", http.StatusGone) }) {
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(r.Body)
	var msg struct {
		Text   string            `json:"text"`
		Blocks []json.RawMessage `json:"blocks"`
	}
	if err != nil || json.Unmarshal(body, &msg) != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	if msg.Text == "" && len(msg.Blocks) == 0 {
		http.Error(w, "no_text", http.StatusBadRequest)
		return
	}
	if err := checkBlocks(msg.Blocks); err != nil {
		http.Error(w, "invalid_blocks", http.StatusBadRequest)
		return
	}
	f.accept(string(body))
	io.WriteString(w, "ok")
}

func (f *fakeSlack) postMessage(w http.ResponseWriter, r *http.Request) {
	answer := func(v map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	fail := func(code string) { answer(map[string]any{"ok": false, "error": code}) }
	if f.misbehave(w, r, func() { fail("channel_not_found") }) {
		return
	}
	if err := r.ParseForm(); err != nil {
		fail("invalid_form_data")
		return
	}
	if r.PostForm.Get("token") != botToken {
		fail("invalid_auth")
		return
	}
	// A channel is named as configured, or by the ID Slack answered with (thread replies).
	if ch := r.PostForm.Get("channel"); ch != botChannel && ch != channelID {
		fail("channel_not_found")
		return
	}
	text, blocksJSON := r.PostForm.Get("text"), r.PostForm.Get("blocks")
	var blocks []json.RawMessage
	if blocksJSON != "" && json.Unmarshal([]byte(blocksJSON), &blocks) != nil {
		fail("invalid_blocks_format")
		return
	}
	if text == "" && len(blocks) == 0 {
		fail("no_text")
		return
	}
	if err := checkBlocks(blocks); err != nil {
		fail("invalid_blocks")
		return
	}
	record := "text=" + text + "\nblocks=" + blocksJSON
	if ts := r.PostForm.Get("thread_ts"); ts != "" {
		record = "thread_ts=" + ts + "\n" + record
	}
	f.accept(record)
	f.mu.Lock()
	ts := fmt.Sprintf("1714564800.%06d", 100+f.posts)
	f.posts++
	f.mu.Unlock()
	answer(map[string]any{"ok": true, "channel": channelID, "ts": ts})
}

// checkBlocks enforces Slack's documented Block Kit limits for the blocks we send.
func checkBlocks(raw []json.RawMessage) error {
	if len(raw) > 50 {
		return fmt.Errorf("%d blocks", len(raw))
	}
	type text struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	checkText := func(t *text, max int, want ...string) error {
		if t == nil {
			return nil
		}
		n := utf8.RuneCountInString(t.Text)
		if n == 0 || n > max {
			return fmt.Errorf("text of %d characters, limit %d", n, max)
		}
		if len(want) > 0 && t.Type != want[0] {
			return fmt.Errorf("text type %q, want %q", t.Type, want[0])
		}
		return nil
	}
	for i, r := range raw {
		var b struct {
			Type     string `json:"type"`
			Text     *text  `json:"text"`
			Fields   []text `json:"fields"`
			Elements []text `json:"elements"`
		}
		if err := json.Unmarshal(r, &b); err != nil {
			return err
		}
		var err error
		switch b.Type {
		case "header":
			err = checkText(b.Text, 150, "plain_text")
			if b.Text == nil {
				err = fmt.Errorf("header without text")
			}
		case "section":
			err = checkText(b.Text, 3000)
			if len(b.Fields) > 10 || (b.Text == nil && len(b.Fields) == 0) {
				err = fmt.Errorf("section with %d fields", len(b.Fields))
			}
			for _, f := range b.Fields {
				if err == nil {
					err = checkText(&f, 2000)
				}
			}
		case "context":
			if len(b.Elements) == 0 || len(b.Elements) > 10 {
				err = fmt.Errorf("context with %d elements", len(b.Elements))
			}
			for _, e := range b.Elements {
				if err == nil {
					err = checkText(&e, 3000)
				}
			}
		case "divider":
		default:
			err = fmt.Errorf("unexpected block type %q", b.Type)
		}
		if err != nil {
			return fmt.Errorf("block %d (%s): %w", i, b.Type, err)
		}
	}
	return nil
}

// hookURL is the webhook's full, secret URL on the fake.
func (f *fakeSlack) hookURL() string { return f.srv.URL + hookPath }

// apiURL is the Web API base on the fake, deliberately without the trailing slash.
func (f *fakeSlack) apiURL() string { return f.srv.URL + "/api" }
