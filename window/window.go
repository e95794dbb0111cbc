package window

import (
	"fmt"
	"slices"
	"time"
)

// Kind is what a window is for.
type Kind string

// Window kinds: staging windows run the staging waves of a candidate, production windows its
// production waves, and security windows (often more frequent, e.g. nightly) run both phases,
// staging first, of a fast-tracked security candidate.
const (
	Staging    Kind = "staging"
	Production Kind = "production"
	Security   Kind = "security"
)

// Kinds lists the valid kinds, for validation messages.
var Kinds = []Kind{Staging, Production, Security}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

// Window is a named, recurring period in which rollouts may run.
type Window struct {
	Name       string
	Kind       Kind
	Recurrence *Recurrence
	// Duration is elapsed time from opening to closing (a window spanning a DST change is
	// still this long in real time).
	Duration time.Duration
	// Cutoff: no new host starts later than this before the end; hosts in flight finish.
	Cutoff time.Duration
	// Blackouts are change freezes: nothing starts while one is in force.
	Blackouts []Blackout
	// Policy and Environments are what the window serves: a patching policy by name and/or
	// inventory environments.
	Policy       string
	Environments []string
}

// Blackout is a change freeze over whole days, From to To inclusive, in the window's zone.
type Blackout struct {
	From, To Date
	Reason   string
}

// Date is a calendar day.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate reads YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("date must be YYYY-MM-DD, not %q", s)
	}
	return Date{t.Year(), t.Month(), t.Day()}, nil
}

func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// Before reports whether d is an earlier day than e.
func (d Date) Before(e Date) bool {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Before(time.Date(e.Year, e.Month, e.Day, 0, 0, 0, 0, time.UTC))
}

// midnight is the first instant of day d (plus days) in loc; a midnight lost to a DST gap
// is the first instant after it.
func (d Date) midnight(loc *time.Location, plusDays int) time.Time {
	return Resolve(time.Date(d.Year, d.Month, d.Day+plusDays, 0, 0, 0, 0, time.UTC), loc)
}

// Span is the blackout's interval [start, end) in loc.
func (b Blackout) Span(loc *time.Location) (start, end time.Time) {
	return b.From.midnight(loc, 0), b.To.midnight(loc, 1)
}

// Overlaps reports whether two blackouts share a day.
func (b Blackout) Overlaps(c Blackout) bool {
	return !b.To.Before(c.From) && !c.To.Before(b.From)
}

func (b Blackout) String() string {
	s := b.From.String() + ".." + b.To.String()
	if b.Reason != "" {
		s += " (" + b.Reason + ")"
	}
	return s
}

// Occurrence is one opening of a window.
type Occurrence struct {
	Window *Window
	Open   time.Time
	// Close is Open+Duration, or earlier when a blackout starts inside the window.
	Close time.Time
	// LastStart is the last instant a new host may start: Close minus the cutoff.
	LastStart time.Time
	// Blackout is set when the window would open inside a freeze: it does not open at all.
	Blackout *Blackout
	// Trimmed is set when a freeze starting inside the window closes it early.
	Trimmed *Blackout
}

// Blocked reports whether the occurrence does not open because of a blackout.
func (o Occurrence) Blocked() bool { return o.Blackout != nil }

// Contains reports whether the occurrence is open at t.
func (o Occurrence) Contains(t time.Time) bool {
	return !o.Blocked() && !t.Before(o.Open) && t.Before(o.Close)
}

// CanStart reports whether a new host may start at t: open, and not past the cutoff.
func (o Occurrence) CanStart(t time.Time) bool { return o.Contains(t) && t.Before(o.LastStart) }

// Next returns the first occurrence opening strictly after t, ok false when the recurrence
// has none in the next five years.
func (w *Window) Next(t time.Time) (Occurrence, bool) {
	open := w.Recurrence.Next(t)
	if open.IsZero() {
		return Occurrence{}, false
	}
	return w.occurrence(open), true
}

// At returns the occurrence open at t (opened at or before t, not yet closed), ok false when
// the window is closed at t. A blocked occurrence is never open.
func (w *Window) At(t time.Time) (Occurrence, bool) {
	// Openings in (t-Duration, t] are the only ones that can still be open at t.
	from := t.Add(-w.Duration)
	for range maxSteps {
		o, ok := w.Next(from)
		if !ok || o.Open.After(t) {
			return Occurrence{}, false
		}
		if o.Contains(t) {
			return o, true
		}
		from = o.Open
	}
	return Occurrence{}, false
}

// Upcoming lists the occurrences that are open at t or open after it, at most n.
func (w *Window) Upcoming(t time.Time, n int) []Occurrence {
	var out []Occurrence
	from := t
	if o, ok := w.At(t); ok {
		out = append(out, o)
		from = o.Open
	}
	for len(out) < n {
		o, ok := w.Next(from)
		if !ok {
			break
		}
		out = append(out, o)
		from = o.Open
	}
	return out
}

func (w *Window) occurrence(open time.Time) Occurrence {
	loc := w.Recurrence.Location()
	o := Occurrence{Window: w, Open: open.In(loc), Close: open.Add(w.Duration).In(loc)}
	for i := range w.Blackouts {
		b := &w.Blackouts[i]
		start, end := b.Span(loc)
		switch {
		case !open.Before(start) && open.Before(end):
			o.Blackout = b
		case start.After(open) && start.Before(o.Close):
			o.Close, o.Trimmed = start.In(loc), b
		}
	}
	o.LastStart = o.Close.Add(-w.Cutoff)
	return o
}

// Upcoming lists the next n occurrences of all windows together, in opening order, those
// open at t first.
func Upcoming(ws []*Window, t time.Time, n int) []Occurrence {
	var all []Occurrence
	for _, w := range ws {
		all = append(all, w.Upcoming(t, n)...)
	}
	slices.SortStableFunc(all, func(a, b Occurrence) int { return a.Open.Compare(b.Open) })
	return all[:min(n, len(all))]
}
