package notify_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/notify/notifytest"
)

// lines collects what a local notifier printed, one entry per Notify call.
type lines struct {
	mu  sync.Mutex
	got []string
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, string(p))
	return len(p), nil
}

func (l *lines) Received() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

func TestConformance(t *testing.T) {
	t.Run("Log", func(t *testing.T) {
		notifytest.Run(t, notifytest.Target{New: func(t *testing.T, _ notifytest.Fault) notifytest.Setup {
			l := &lines{}
			return notifytest.Setup{
				Notifier: notify.NewLog(slog.New(slog.NewTextHandler(l, nil))),
				Received: l.Received,
			}
		}})
	})
	t.Run("Writer", func(t *testing.T) {
		notifytest.Run(t, notifytest.Target{New: func(t *testing.T, _ notifytest.Fault) notifytest.Setup {
			l := &lines{}
			return notifytest.Setup{Notifier: notify.NewWriter(l), Received: l.Received}
		}})
	})
}

func TestMessageJSONRoundTrip(t *testing.T) {
	in := notifytest.Release()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out notify.Message
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(out)
	if !bytes.Equal(b, b2) || !out.Date.Equal(in.Date) {
		t.Fatalf("round trip changed the message:\n%s\n%s", b, b2)
	}
	// Unset optional fields stay out of the stored form.
	b, _ = json.Marshal(notify.Message{Kind: notify.KindTest, Title: "t"})
	if got, want := string(b), `{"kind":"test","title":"t"}`; got != want {
		t.Errorf("minimal message = %s, want %s", got, want)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*notify.Message)
		want string // substring of the error; "" means valid
	}{
		{"complete", func(*notify.Message) {}, ""},
		{"empty title", func(m *notify.Message) { m.Title = "\t" }, "title"},
		{"relative url", func(m *notify.Message) { m.URL = "/releases/0.5.1" }, "url"},
		{"ftp url", func(m *notify.Message) { m.URL = "ftp://example.com/x" }, "url"},
		{"empty field key", func(m *notify.Message) { m.Fields = []notify.Field{{Value: "v"}} }, "fields[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := notifytest.Release()
			tc.edit(&m)
			err := m.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want error naming %q", err, tc.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	base := errors.New("boom")
	if _, ok := notify.RetryAfter(base); ok {
		t.Error("plain error reported retryable")
	}
	if notify.Retryable(nil, time.Second) != nil {
		t.Error("Retryable(nil) is not nil")
	}
	wrapped := errors.Join(errors.New("outbox"), notify.Retryable(base, 3*time.Second))
	after, ok := notify.RetryAfter(wrapped)
	if !ok || after != 3*time.Second {
		t.Errorf("RetryAfter(wrapped) = %s, %v; want 3s, true", after, ok)
	}
	if !errors.Is(wrapped, base) {
		t.Error("RetryableError does not unwrap")
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"hello world", 7, "hello…"},
		{"ünïcödé", 4, "ünï…"},
		{"abc", 0, ""},
	} {
		if got := notify.Truncate(tc.in, tc.max); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestFormat(t *testing.T) {
	got := notify.Format(notifytest.Release())
	want := `[SECURITY] twemproxy 0.5.1 released
  kind      release
  severity  critical
  version   0.5.1
  date      2024-05-01
  url       https://github.com/twitter/twemproxy/releases/tag/0.5.1
  Exposed hosts 3
  notes     Fixes a crash on malformed redis MULTI replies.

            * bounded buffers
            * faster ketama

`
	if got != want {
		t.Errorf("Format =\n%s\nwant\n%s", got, want)
	}
}
