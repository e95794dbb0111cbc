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

	slackgo "github.com/slack-go/slack"

	"github.com/patchctl/patchctl/notify"
)

// Slack API error codes that mean "not now" rather than "never" (chat.postMessage docs).
var retryableCodes = map[string]bool{
	"ratelimited":         true,
	"rate_limited":        true,
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
}

// Bot posts with a bot token (xoxb-…, scope chat:write) through chat.postMessage. Unlike a
// webhook it learns the message's timestamp, which threads replies under it. The token
// never appears in errors, logs or the printed form of a Bot. A Bot is safe for concurrent use.
type Bot struct {
	api     *slackgo.Client
	channel string
	s       settings
}

var _ notify.Notifier = (*Bot)(nil)

// NewBot returns a Bot posting to channel (an ID like C0123ABCD, or #name).
func NewBot(token, channel string, opts ...Option) (*Bot, error) {
	if strings.TrimSpace(token) == "" {
		return nil, errors.New("slack: bot token is empty")
	}
	if strings.TrimSpace(channel) == "" {
		return nil, errors.New("slack: bot channel is empty")
	}
	s, err := newSettings(opts)
	if err != nil {
		return nil, err
	}
	client := *s.client // a copy: the caller's client stays as it was
	next := client.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	client.Transport = retryAfterSeconds{next: next}
	apiOpts := []slackgo.Option{slackgo.OptionHTTPClient(&client)}
	if s.apiURL != "" {
		apiOpts = append(apiOpts, slackgo.OptionAPIURL(s.apiURL))
	}
	// No retry options: retrying inside a call would hide the delay from the outbox.
	return &Bot{api: slackgo.New(token, apiOpts...), channel: channel, s: s}, nil
}

// Notify posts m to the bot's channel.
func (b *Bot) Notify(ctx context.Context, m notify.Message) error {
	_, _, err := b.Post(ctx, m)
	return err
}

var _ notify.Threader = (*Bot)(nil)

// PostThreaded posts m as a reply in the thread of parent (a reference returned by an
// earlier call), or as a new message when parent is ""; it returns the new message's
// reference ("CHANNEL TS").
func (b *Bot) PostThreaded(ctx context.Context, m notify.Message, parent string) (string, error) {
	var opts []slackgo.MsgOption
	channel := b.channel
	if parent != "" {
		pc, ts, ok := strings.Cut(parent, " ")
		if !ok {
			return "", fmt.Errorf("slack: bad thread reference %q", parent)
		}
		channel = pc
		opts = append(opts, slackgo.MsgOptionTS(ts))
	}
	ch, ts, err := b.post(ctx, channel, m, opts...)
	if err != nil {
		return "", err
	}
	return ch + " " + ts, nil
}

// Post posts m and returns the channel ID and timestamp Slack gave the message; later
// messages can be threaded under them.
func (b *Bot) Post(ctx context.Context, m notify.Message) (channel, ts string, err error) {
	return b.post(ctx, b.channel, m)
}

func (b *Bot) post(ctx context.Context, to string, m notify.Message, extra ...slackgo.MsgOption) (channel, ts string, err error) {
	if err := m.Validate(); err != nil {
		return "", "", err
	}
	ctx, cancel, err := b.s.withTimeout(ctx)
	if err != nil {
		return "", "", err
	}
	defer cancel()

	text, blocks := render(m)
	channel, ts, err = b.api.PostMessageContext(ctx, to, append([]slackgo.MsgOption{
		slackgo.MsgOptionText(text, false), // already escaped by render
		slackgo.MsgOptionBlocks(blocks...),
		slackgo.MsgOptionDisableLinkUnfurl(),
	}, extra...)...)
	if err != nil {
		return "", "", classify("chat.postMessage", err)
	}
	b.s.logger.DebugContext(ctx, "slack message posted", slog.String("channel", channel), slog.String("ts", ts), slog.String("title", m.Title))
	return channel, ts, nil
}

// String names the bot's channel, not its token.
func (b *Bot) String() string { return "slack bot to " + b.channel }

// GoString keeps %#v from printing the token.
func (b *Bot) GoString() string { return b.String() }

// LogValue keeps slog from printing the token.
func (b *Bot) LogValue() slog.Value { return slog.StringValue(b.String()) }

// retryAfterSeconds rewrites a 429's Retry-After to whole seconds: the Slack library reads
// only that form and fails the call with a parse error, which looks permanent, on an HTTP
// date (as a proxy in front of Slack may send).
type retryAfterSeconds struct{ next http.RoundTripper }

func (t retryAfterSeconds) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "" {
		after := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		resp.Header.Set("Retry-After", strconv.Itoa(int(after/time.Second)))
	}
	return resp, err
}

// classify maps the Slack library's errors to retryable or permanent ones.
func classify(method string, err error) error {
	if rl, ok := errors.AsType[*slackgo.RateLimitedError](err); ok {
		return notify.Retryable(&Error{Method: method, Status: 429, Code: "ratelimited", Err: err}, rl.RetryAfter)
	}
	if sc, ok := errors.AsType[slackgo.StatusCodeError](err); ok {
		e := &Error{Method: method, Status: sc.Code, Err: err}
		if sc.Retryable() {
			return notify.Retryable(e, 0)
		}
		return e
	}
	if r, ok := errors.AsType[slackgo.SlackErrorResponse](err); ok {
		e := &Error{Method: method, Status: 200, Code: r.Err, Err: err}
		if retryableCodes[r.Err] {
			return notify.Retryable(e, 0)
		}
		return e
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return transportError(method, ue.URL, err) // the API URL holds no secret
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return notify.Retryable(fmt.Errorf("slack %s: %w", method, err), 0)
	}
	return fmt.Errorf("slack %s: %w", method, err)
}
