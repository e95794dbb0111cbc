package notify

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
)

// writerSummaryMax bounds the notes printed to a terminal.
const writerSummaryMax = 2000

// Writer prints each message as a readable block of text, for terminals and the demo.
type Writer struct {
	mu sync.Mutex // one message is one Write, never interleaved
	w  io.Writer
}

var _ Notifier = (*Writer)(nil)

// NewWriter returns a Writer printing to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Notify prints m. A failed write is returned as a permanent error: the reader is gone.
func (w *Writer) Notify(ctx context.Context, m Message) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if err := ctxErr(ctx); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := io.WriteString(w.w, Format(m)); err != nil {
		return fmt.Errorf("write notification: %w", err)
	}
	return nil
}

// Format renders m as an indented block ending with a blank line:
//
//	[SECURITY] twemproxy 0.5.1 released
//	  kind      release
//	  version   0.5.1
//	  url       https://...
//	  notes     first line of the notes
//	            second line
func Format(m Message) string {
	var b strings.Builder
	b.WriteString(m.Headline())
	b.WriteByte('\n')
	line := func(k, v string) {
		if v == "" {
			return
		}
		for i, l := range strings.Split(strings.TrimRight(v, "\n"), "\n") {
			if i > 0 {
				k = ""
			}
			b.WriteString(strings.TrimRight(fmt.Sprintf("  %-9s %s", k, l), " \t\r"))
			b.WriteByte('\n')
		}
	}
	line("kind", string(m.Kind))
	line("severity", string(m.Severity))
	line("version", m.Version)
	line("date", m.DateString())
	line("url", m.URL)
	for _, f := range m.Fields {
		line(f.Key, f.Value)
	}
	line("notes", Truncate(strings.TrimSpace(m.Summary), writerSummaryMax))
	b.WriteByte('\n')
	return b.String()
}
