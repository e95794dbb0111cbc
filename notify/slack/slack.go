// Package slack delivers notify.Messages to Slack as Block Kit messages, through an incoming
// webhook (Webhook) or a bot token and chat.postMessage (Bot). Neither retries: the outbox
// dispatcher does, guided by notify.RetryAfter.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/patchctl/patchctl/notify"
)

// DefaultTimeout bounds one delivery attempt when WithTimeout is not given.
const DefaultTimeout = 10 * time.Second

// Option configures a Webhook or a Bot.
type Option func(*settings) error

type settings struct {
	client  *http.Client
	timeout time.Duration
	apiURL  string
	logger  *slog.Logger
}

func newSettings(opts []Option) (settings, error) {
	s := settings{
		client:  &http.Client{Timeout: 2 * DefaultTimeout}, // a backstop; ctx carries the real limit
		timeout: DefaultTimeout,
		logger:  slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		if err := o(&s); err != nil {
			return settings{}, err
		}
	}
	return s, nil
}

// WithHTTPClient sends requests through c (proxies, TLS settings, tests).
func WithHTTPClient(c *http.Client) Option {
	return func(s *settings) error {
		if c == nil {
			return errors.New("slack: http client is nil")
		}
		s.client = c
		return nil
	}
}

// WithTimeout bounds each Notify call, including connecting and reading the answer.
func WithTimeout(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return fmt.Errorf("slack: timeout %s: must be positive", d)
		}
		s.timeout = d
		return nil
	}
}

// WithAPIURL sets the Web API base URL of a Bot (a fake Slack in tests, a proxy in
// production). The slash the Slack library needs at the end is added if missing.
// NewWebhook rejects it: a webhook URL is complete by itself.
func WithAPIURL(u string) Option {
	return func(s *settings) error {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("slack: api url %q: not an absolute http(s) url", u)
		}
		if !strings.HasSuffix(u, "/") {
			u += "/"
		}
		s.apiURL = u
		return nil
	}
}

// WithLogger logs each delivery at debug level. Secrets are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(s *settings) error {
		if l == nil {
			return errors.New("slack: logger is nil")
		}
		s.logger = l
		return nil
	}
}

// Error is a refusal or failure reported by Slack itself.
type Error struct {
	Method string // "webhook" or the Web API method, e.g. "chat.postMessage"
	Status int    // HTTP status of the answer
	Code   string // Slack's reason, e.g. "invalid_blocks", "channel_not_found"; may be empty
	Err    error  // the Slack library's error, if it produced one
}

func (e *Error) Error() string {
	msg := "slack " + e.Method + ": "
	if e.Status != http.StatusOK {
		msg += strconv.Itoa(e.Status) + " " + http.StatusText(e.Status)
		if e.Code != "" {
			msg += ": "
		}
	}
	return msg + e.Code
}

func (e *Error) Unwrap() error { return e.Err }

// transportError classifies a failure to get any answer: always retryable, with the
// request URL replaced by redacted, because a webhook URL is the secret itself.
func transportError(method, redacted string, err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = &url.Error{Op: ue.Op, URL: redacted, Err: ue.Err}
	}
	return notify.Retryable(fmt.Errorf("slack %s: %w", method, err), 0)
}

// withTimeout applies the per-call timeout, refusing to start if ctx is already done.
func (s settings) withTimeout(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if err := context.Cause(ctx); err != nil {
		return nil, nil, notify.Retryable(fmt.Errorf("slack: %w", err), 0)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	return ctx, cancel, nil
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date; 0 if absent or invalid.
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(h); err == nil {
		return max(time.Duration(n)*time.Second, 0)
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now).Round(time.Second), 0)
	}
	return 0
}
