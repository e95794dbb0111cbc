// Package notify defines what patchctl tells people (Message) and the one interface every
// channel implements (Notifier). The outbox dispatcher is the consumer: it stores Messages
// as JSON, calls Notify, and retries only what RetryAfter says is worth retrying.
package notify

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Notifier delivers one message. A nil error means the receiver accepted it. An error that
// RetryAfter reports as retryable (rate limit, server error, network failure, timeout,
// cancelled ctx) may succeed later; any other error is permanent and must not be retried.
type Notifier interface {
	Notify(ctx context.Context, m Message) error
}

// Kind says what happened. Unknown kinds are kept as they are so that an outbox written by
// a newer patchctl still renders.
type Kind string

// Kinds patchctl sends.
const (
	KindRelease  Kind = "release"  // a new twemproxy release
	KindSecurity Kind = "security" // a security advisory
	KindExposure Kind = "exposure" // hosts run an affected version
	KindDeploy   Kind = "deploy"   // a rollout step or result
	KindRollback Kind = "rollback" // a rollout was rolled back
	KindTest     Kind = "test"     // `patchctl notify test`
	KindDigest   Kind = "digest"   // many alerts due at once, as one message
	KindWindow   Kind = "window"   // a patch window: reminder, start, summary, what the scheduler did
)

// Severity ranks a message for readers and log levels.
type Severity string

// Severities, lowest first.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Field is one key/value line shown beside the summary (host, pool, from/to version...).
type Field struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Message is an alert, independent of where it is delivered. It is stored in the outbox as
// JSON, so fields are only ever added.
type Message struct {
	Kind     Kind     `json:"kind"`
	Title    string   `json:"title"`
	Summary  string   `json:"summary,omitempty"`  // plain text or GitHub Markdown, any length
	Severity Severity `json:"severity,omitempty"` // urgency: log level, digest order
	// AdvisorySeverity is the advisory's own rating (low, medium, high, critical), shown
	// instead of Severity when set: a "high" advisory must not read "critical".
	AdvisorySeverity string    `json:"advisory_severity,omitempty"`
	Security         bool      `json:"security,omitempty"` // security-relevant: rendered prominently
	Version          string    `json:"version,omitempty"`
	Date             time.Time `json:"date,omitzero"`
	URL              string    `json:"url,omitempty"` // the release or advisory page
	Fields           []Field   `json:"fields,omitempty"`
}

// Validate reports a message no notifier can render, naming the field.
func (m Message) Validate() error {
	if strings.TrimSpace(m.Title) == "" {
		return errors.New("message: title is empty")
	}
	if m.URL != "" {
		u, err := url.Parse(m.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("message: url %q: not an absolute http(s) url", m.URL)
		}
	}
	for i, f := range m.Fields {
		if strings.TrimSpace(f.Key) == "" {
			return fmt.Errorf("message: fields[%d]: key is empty", i)
		}
	}
	return nil
}

// Headline is the message on one line: the notification text of chat clients and the log
// message. The security flag comes first so it survives any truncation.
func (m Message) Headline() string {
	var b strings.Builder
	if m.Security {
		b.WriteString("[SECURITY] ")
	}
	b.WriteString(strings.Join(strings.Fields(m.Title), " "))
	if m.Version != "" && !strings.Contains(m.Title, m.Version) {
		fmt.Fprintf(&b, " (%s)", m.Version)
	}
	return b.String()
}

// ShownSeverity is the severity people read: the advisory's own rating when the message
// is about advisories, else the message's severity.
func (m Message) ShownSeverity() string {
	if m.AdvisorySeverity != "" {
		return m.AdvisorySeverity
	}
	return string(m.Severity)
}

// DateString is the date as shown to people, or "" if unset.
func (m Message) DateString() string {
	if m.Date.IsZero() {
		return ""
	}
	return m.Date.UTC().Format(time.DateOnly)
}

// Truncate shortens s to at most max runes, ending with "…" when it cut something, and never
// splits a UTF-8 sequence.
func Truncate(s string, max int) string {
	if max <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	n := 0
	for i := range s {
		if n == max-1 {
			return strings.TrimRightFunc(s[:i], isSpace) + "…"
		}
		n++
	}
	return s
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }
