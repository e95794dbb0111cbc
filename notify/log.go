package notify

import (
	"context"
	"log/slog"
)

// logSummaryMax bounds the notes copied into a log record; the URL points at the rest.
const logSummaryMax = 1000

// Log writes each message as one structured log record. It is the notifier used when no
// chat channel is configured, so alerts are never silently dropped.
type Log struct {
	logger *slog.Logger
}

var _ Notifier = (*Log)(nil)

// NewLog returns a Log writing to logger.
func NewLog(logger *slog.Logger) *Log { return &Log{logger: logger} }

// Notify logs m at Warn level if it is security-relevant or critical, Info otherwise.
func (l *Log) Notify(ctx context.Context, m Message) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if err := ctxErr(ctx); err != nil {
		return err
	}
	level := slog.LevelInfo
	if m.Security || m.Severity == SeverityCritical {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{slog.String("kind", string(m.Kind))}
	if m.Security {
		// Only when set: a "security=false" would make every release look like a finding
		// to anyone grepping the log.
		attrs = append(attrs, slog.Bool("security", true))
	}
	for _, a := range []struct{ k, v string }{
		{"severity", m.ShownSeverity()},
		{"version", m.Version},
		{"date", m.DateString()},
		{"url", m.URL},
		{"summary", Truncate(m.Summary, logSummaryMax)},
	} {
		if a.v != "" {
			attrs = append(attrs, slog.String(a.k, a.v))
		}
	}
	if len(m.Fields) > 0 {
		fields := make([]any, 0, len(m.Fields))
		for _, f := range m.Fields {
			fields = append(fields, slog.String(f.Key, f.Value))
		}
		attrs = append(attrs, slog.Group("fields", fields...))
	}
	l.logger.LogAttrs(ctx, level, m.Headline(), attrs...)
	return nil
}
