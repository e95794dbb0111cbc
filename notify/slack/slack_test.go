package slack_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/notify/notifytest"
	"github.com/patchctl/patchctl/notify/slack"
)

func newWebhook(t *testing.T, f *fakeSlack, opts ...slack.Option) *slack.Webhook {
	t.Helper()
	w, err := slack.NewWebhook(f.hookURL(), append([]slack.Option{slack.WithTimeout(notifytest.TimeoutFor(notifytest.OK))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func newBot(t *testing.T, f *fakeSlack, opts ...slack.Option) *slack.Bot {
	t.Helper()
	b, err := slack.NewBot(botToken, botChannel, append([]slack.Option{slack.WithTimeout(notifytest.TimeoutFor(notifytest.OK)), slack.WithAPIURL(f.apiURL())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	t.Run("Webhook", func(t *testing.T) {
		notifytest.Run(t, notifytest.Target{Faults: notifytest.Remote, New: func(t *testing.T, fault notifytest.Fault) notifytest.Setup {
			f := newFakeSlack(t, fault)
			return notifytest.Setup{Notifier: newWebhook(t, f, slack.WithTimeout(notifytest.TimeoutFor(fault))), Received: f.Received, Secrets: []string{hookPath, "s3cr3tW3bh00kT0k3n"}}
		}})
	})
	t.Run("Bot", func(t *testing.T) {
		notifytest.Run(t, notifytest.Target{Faults: notifytest.Remote, New: func(t *testing.T, fault notifytest.Fault) notifytest.Setup {
			f := newFakeSlack(t, fault)
			return notifytest.Setup{Notifier: newBot(t, f, slack.WithTimeout(notifytest.TimeoutFor(fault))), Received: f.Received, Secrets: []string{botToken, "s3cr3tB0tT0k3n"}}
		}})
	})
}

// answer is a receiver that always gives the same answer.
func answer(t *testing.T, status int, header, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k, v, ok := strings.Cut(header, ": "); ok {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type want struct {
	retry bool
	after time.Duration
	code  string // slack.Error.Code
}

func check(t *testing.T, err error, w want) {
	t.Helper()
	after, retry := notify.RetryAfter(err)
	if retry != w.retry || after != w.after {
		t.Errorf("RetryAfter(%v) = %s, %v; want %s, %v", err, after, retry, w.after, w.retry)
	}
	serr, ok := errors.AsType[*slack.Error](err)
	if !ok {
		t.Fatalf("error %v is not a *slack.Error", err)
	}
	if serr.Code != w.code {
		t.Errorf("Code = %q, want %q", serr.Code, w.code)
	}
	if !strings.Contains(err.Error(), w.code) {
		t.Errorf("error %q does not name %q", err, w.code)
	}
}

func TestWebhookAnswers(t *testing.T) {
	for _, tc := range []struct {
		status int
		header string
		body   string
		want   want
	}{
		{400, "", "invalid_blocks", want{code: "invalid_blocks"}},
		{400, "", "no_text\n", want{code: "no_text"}},
		{403, "", "action_prohibited", want{code: "action_prohibited"}},
		{404, "", "no_service", want{code: "no_service"}},
		{410, "", "channel_is_archived", want{code: "channel_is_archived"}},
		{429, "", "rate_limited", want{retry: true, code: "rate_limited"}},
		{429, "Retry-After: 2", "", want{retry: true, after: 2 * time.Second}},
		{503, "Retry-After: 30", "", want{retry: true, after: 30 * time.Second}},
		{500, "", "rollup_error", want{retry: true, code: "rollup_error"}},
		{502, "", "<html>\n<body>Bad Gateway", want{retry: true, code: "<html>"}},
	} {
		t.Run(fmt.Sprintf("%d %s", tc.status, tc.body), func(t *testing.T) {
			w, err := slack.NewWebhook(answer(t, tc.status, tc.header, tc.body)+hookPath, slack.WithTimeout(notifytest.TimeoutFor(notifytest.OK)))
			if err != nil {
				t.Fatal(err)
			}
			err = w.Notify(t.Context(), notifytest.Release())
			check(t, err, tc.want)
			if strings.Contains(err.Error(), hookPath) {
				t.Errorf("error leaks the webhook path: %v", err)
			}
		})
	}
}

func TestBotAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header string
		body   string
		want   want
	}{
		{"channel not found", 200, "", `{"ok":false,"error":"channel_not_found"}`, want{code: "channel_not_found"}},
		{"not in channel", 200, "", `{"ok":false,"error":"not_in_channel"}`, want{code: "not_in_channel"}},
		{"invalid blocks", 200, "", `{"ok":false,"error":"invalid_blocks"}`, want{code: "invalid_blocks"}},
		{"token revoked", 200, "", `{"ok":false,"error":"token_revoked"}`, want{code: "token_revoked"}},
		{"internal error", 200, "", `{"ok":false,"error":"internal_error"}`, want{retry: true, code: "internal_error"}},
		{"ratelimited in body", 200, "", `{"ok":false,"error":"ratelimited"}`, want{retry: true, code: "ratelimited"}},
		{"429", 429, "Retry-After: 4", `{"ok":false,"error":"ratelimited"}`, want{retry: true, after: 4 * time.Second, code: "ratelimited"}},
		{"429 with a date", 429, "Retry-After: Mon, 02 Jan 2006 15:04:05 GMT", "", want{retry: true, code: "ratelimited"}},
		{"429 with garbage", 429, "Retry-After: soon", "", want{retry: true, code: "ratelimited"}},
		{"403", 403, "", "Forbidden", want{}},
		{"502", 502, "", "<html>Bad Gateway</html>", want{retry: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := slack.NewBot(botToken, botChannel, slack.WithAPIURL(answer(t, tc.status, tc.header, tc.body)+"/api/"))
			if err != nil {
				t.Fatal(err)
			}
			err = b.Notify(t.Context(), notifytest.Release())
			check(t, err, tc.want)
			if strings.Contains(err.Error(), botToken) {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}

func TestBotCredentials(t *testing.T) {
	f := newFakeSlack(t, notifytest.OK)
	for _, tc := range []struct {
		name, token, channel, code string
	}{
		{"wrong token", "xoxb-wrong-s3cr3t", botChannel, "invalid_auth"},
		{"wrong channel", botToken, "#elsewhere", "channel_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := slack.NewBot(tc.token, tc.channel, slack.WithAPIURL(f.apiURL()))
			if err != nil {
				t.Fatal(err)
			}
			err = b.Notify(t.Context(), notifytest.Release())
			check(t, err, want{code: tc.code})
			if strings.Contains(err.Error(), tc.token) {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
	if n := len(f.Received()); n != 0 {
		t.Errorf("fake accepted %d messages with bad credentials", n)
	}
}

func TestBotPostReturnsThreadAnchor(t *testing.T) {
	f := newFakeSlack(t, notifytest.OK)
	channel, ts, err := newBot(t, f).Post(t.Context(), notifytest.Release())
	if err != nil {
		t.Fatal(err)
	}
	if channel != channelID || ts != "1714564800.000100" {
		t.Errorf("Post = %q, %q; want %q, %q", channel, ts, channelID, "1714564800.000100")
	}
}

func TestLogsHoldNoSecret(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFakeSlack(t, notifytest.OK)
	w, b := newWebhook(t, f, slack.WithLogger(logger)), newBot(t, f, slack.WithLogger(logger))
	for _, n := range []notify.Notifier{w, b} {
		if err := n.Notify(t.Context(), notifytest.Release()); err != nil {
			t.Fatal(err)
		}
		logger.Info("configured", "notifier", n)
	}
	got := buf.String()
	if strings.Count(got, "twemproxy 0.5.1 released") != 2 {
		t.Errorf("deliveries not logged:\n%s", got)
	}
	for _, secret := range []string{hookPath, botToken} {
		if strings.Contains(got, secret) {
			t.Errorf("log leaks %q:\n%s", secret, got)
		}
	}
}

func TestConstructorErrors(t *testing.T) {
	const secretish = "s3cr3t-in-a-bad-url"
	for _, tc := range []struct {
		name string
		make func() error
		want string
	}{
		{"webhook not a url", func() error { _, err := slack.NewWebhook("hooks " + secretish); return err }, "webhook url"},
		{"webhook relative", func() error { _, err := slack.NewWebhook("/services/" + secretish); return err }, "webhook url"},
		{"webhook with api url", func() error {
			_, err := slack.NewWebhook("https://example.com/services/"+secretish, slack.WithAPIURL("https://example.com/api/"))
			return err
		}, "bots only"},
		{"bot without token", func() error { _, err := slack.NewBot(" ", "#c"); return err }, "token is empty"},
		{"bot without channel", func() error { _, err := slack.NewBot(secretish, ""); return err }, "channel is empty"},
		{"bad api url", func() error { _, err := slack.NewBot(secretish, "#c", slack.WithAPIURL("localhost:1/api")); return err }, "api url"},
		{"zero timeout", func() error { _, err := slack.NewBot(secretish, "#c", slack.WithTimeout(0)); return err }, "timeout"},
		{"nil client", func() error { _, err := slack.NewBot(secretish, "#c", slack.WithHTTPClient(nil)); return err }, "http client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.make()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secretish) {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}

// A parent context that ends mid-request makes the call give up at once, retryably.
func TestCancelMidRequest(t *testing.T) {
	f := newFakeSlack(t, notifytest.Slow)
	w, err := slack.NewWebhook(f.hookURL()) // default timeout: only ctx ends the call
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err = w.Notify(ctx, notifytest.Release())
	if _, ok := notify.RetryAfter(err); !ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want retryable deadline exceeded", err)
	}
}

// Every outbox kind reaches Slack through both the webhook and the bot, saying what its
// alert must say.
func TestEveryOutboxKindDelivers(t *testing.T) {
	samples := notifytest.Outbox()
	for _, kind := range notify.OutboxKinds() {
		e, ok := samples[kind]
		if !ok {
			t.Fatalf("no sample of %s in notifytest.Outbox", kind)
		}
		payload, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		m, err := notify.Render(payload)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		for _, via := range []string{"webhook", "bot"} {
			t.Run(kind+"/"+via, func(t *testing.T) {
				f := newFakeSlack(t, notifytest.OK)
				var n notify.Notifier = newWebhook(t, f)
				if via == "bot" {
					n = newBot(t, f)
				}
				if err := n.Notify(t.Context(), m); err != nil {
					t.Fatalf("Notify: %v", err)
				}
				got := f.Received()
				if len(got) != 1 {
					t.Fatalf("received %d messages", len(got))
				}
				for _, w := range notifytest.MustSay(e) {
					if !strings.Contains(got[0], w) {
						t.Errorf("Slack did not get %q:\n%s", w, got[0])
					}
				}
			})
		}
	}
}
