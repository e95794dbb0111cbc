package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/patchctl/patchctl/notify"
)

// maxErrorBody bounds how much of a refusal is read: Slack answers a short code
// ("invalid_blocks"); a proxy in between may answer a whole HTML page.
const maxErrorBody = 512

// Webhook posts to a Slack incoming webhook. The URL is a credential: it never appears in
// errors, logs or the printed form of a Webhook. A Webhook is safe for concurrent use.
type Webhook struct {
	url      string
	redacted string // scheme://host/…, for messages
	s        settings
}

var _ notify.Notifier = (*Webhook)(nil)

// NewWebhook returns a Webhook posting to rawURL.
func NewWebhook(rawURL string, opts ...Option) (*Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Not even the parse error: it quotes the URL.
		return nil, errors.New("slack: webhook url: not an absolute http(s) url")
	}
	s, err := newSettings(opts)
	if err != nil {
		return nil, err
	}
	if s.apiURL != "" {
		return nil, errors.New("slack: webhook: the api url option applies to bots only")
	}
	return &Webhook{url: rawURL, redacted: u.Scheme + "://" + u.Host + "/…", s: s}, nil
}

// Notify posts m. Slack's refusals come back as *Error with Slack's reason in Code.
func (w *Webhook) Notify(ctx context.Context, m notify.Message) error {
	if err := m.Validate(); err != nil {
		return err
	}
	ctx, cancel, err := w.s.withTimeout(ctx)
	if err != nil {
		return err
	}
	defer cancel()

	text, blocks := render(m)
	no := false
	body, err := json.Marshal(slackgo.WebhookMessage{
		Text:        text,
		Blocks:      &slackgo.Blocks{BlockSet: blocks},
		UnfurlLinks: &no, // the blocks already show the link; a preview only adds noise
		UnfurlMedia: &no,
	})
	if err != nil {
		return fmt.Errorf("slack webhook: encode message: %w", err)
	}
	// Our own request rather than slack.PostWebhook: that one drops the answer's body,
	// which holds the only explanation Slack gives.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return errors.New("slack webhook: cannot build request") // err would quote the url
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.s.client.Do(req)
	if err != nil {
		return transportError("webhook", w.redacted, err)
	}
	defer resp.Body.Close()
	reason, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused

	if resp.StatusCode == http.StatusOK {
		w.s.logger.DebugContext(ctx, "slack webhook delivered", slog.String("webhook", w.redacted), slog.String("title", m.Title))
		return nil
	}
	serr := &Error{Method: "webhook", Status: resp.StatusCode, Code: firstLine(string(reason))}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return notify.Retryable(serr, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()))
	}
	return serr
}

// String names the webhook without its secret path.
func (w *Webhook) String() string { return "slack webhook " + w.redacted }

// GoString keeps %#v from printing the URL.
func (w *Webhook) GoString() string { return w.String() }

// LogValue keeps slog from printing the URL.
func (w *Webhook) LogValue() slog.Value { return slog.StringValue(w.String()) }

// firstLine is a printable, bounded summary of an answer body.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
	return notify.Truncate(strings.TrimSpace(s), 200)
}
