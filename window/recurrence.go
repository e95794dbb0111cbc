// Package window computes patch windows: recurrences (any 5-field cron spec, and the monthly
// forms robfig/cron cannot express such as "second tuesday at 02:00" or "last friday at
// 22:00"), in an IANA time zone, with an offset in days, a duration, a cutoff and blackout
// date ranges, and with daylight-saving changes resolved explicitly.
//
// Every recurrence is evaluated on the wall clock first (as if the zone had no DST) and each
// wall-clock match is then turned into exactly one instant:
//   - a wall-clock time that does not exist that day (spring forward) opens at the first
//     instant after the gap (Berlin 02:30 on the last Sunday of March opens at 03:00 CEST);
//   - a wall-clock time that exists twice (fall back) opens at its first occurrence
//     (Berlin 02:30 on the last Sunday of October opens at 02:30 CEST, not again at 02:30 CET).
//
// So a window opens once per matching day, never twice and never not at all.
package window

import (
	_ "time/tzdata" // zone validation must not depend on the machine's zoneinfo

	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// ErrSyntax is wrapped by every recurrence parse error.
var ErrSyntax = errors.New("invalid recurrence")

// MaxOffsetDays bounds offset_days: a month either way is the most an offset can mean.
const MaxOffsetDays = 27

// Recurrence is a parsed recurrence in a time zone; it is a cron.Schedule.
type Recurrence struct {
	spec   string
	offset int
	loc    *time.Location
	wall   cron.Schedule // evaluated on wall-clock times expressed in UTC
}

var _ cron.Schedule = (*Recurrence)(nil)

// Parse reads a recurrence: a 5-field cron spec ("0 2 * * 2") or a descriptor (@daily,
// @weekly, @monthly, @yearly), or a monthly form "[the] ORDINAL DAY at HH:MM" where ORDINAL is
// first..fifth, 1st..5th or last and DAY a weekday name (monday, mon, ...) or "weekday" (Monday
// to Friday). offsetDays moves every occurrence that many days later (or earlier if negative):
// "2 days after the second tuesday" is ("second tuesday at 02:00", 2).
func Parse(spec string, loc *time.Location, offsetDays int) (*Recurrence, error) {
	if loc == nil {
		return nil, fmt.Errorf("%w: no time zone", ErrSyntax)
	}
	if offsetDays < -MaxOffsetDays || offsetDays > MaxOffsetDays {
		return nil, fmt.Errorf("%w: offset of %d days is outside -%d..%d", ErrSyntax, offsetDays, MaxOffsetDays, MaxOffsetDays)
	}
	spec = strings.Join(strings.Fields(spec), " ")
	if spec == "" {
		return nil, fmt.Errorf("%w: empty", ErrSyntax)
	}
	if upper := strings.ToUpper(spec); strings.HasPrefix(upper, "TZ=") || strings.HasPrefix(upper, "CRON_TZ=") {
		return nil, fmt.Errorf("%w %q: set the time zone with time_zone, not a TZ= prefix", ErrSyntax, spec)
	}
	var wall cron.Schedule
	var err error
	if isMonthlyForm(spec) {
		wall, err = parseMonthly(spec)
	} else {
		wall, err = parseCron(spec)
	}
	if err != nil {
		return nil, err
	}
	if offsetDays != 0 {
		wall = offsetSchedule{inner: wall, days: offsetDays}
	}
	return &Recurrence{spec: spec, offset: offsetDays, loc: loc, wall: wall}, nil
}

// Location is the recurrence's time zone.
func (r *Recurrence) Location() *time.Location { return r.loc }

// OffsetDays is the configured offset.
func (r *Recurrence) OffsetDays() int { return r.offset }

// Spec is the recurrence as written (whitespace normalised).
func (r *Recurrence) Spec() string { return r.spec }

// String describes the recurrence for people: "2 days after second tuesday at 02:00 (Europe/Berlin)".
func (r *Recurrence) String() string {
	s := r.spec
	switch {
	case r.offset == 1 || r.offset == -1:
		s = fmt.Sprintf("1 day %s %s", beforeAfter(r.offset), s)
	case r.offset != 0:
		s = fmt.Sprintf("%d days %s %s", abs(r.offset), beforeAfter(r.offset), s)
	}
	return s + " (" + r.loc.String() + ")"
}

func beforeAfter(n int) string {
	if n < 0 {
		return "before"
	}
	return "after"
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// maxSteps bounds the search for the next instant: each wall-clock match resolves to a
// distinct instant except in a DST gap or a repeated hour, so a handful always suffices.
const maxSteps = 1000

// Next returns the first opening strictly after t, in the recurrence's zone, or the zero time
// if there is none within the next five years.
func (r *Recurrence) Next(t time.Time) time.Time {
	w := wallClock(t.In(r.loc))
	for range maxSteps {
		w = r.wall.Next(w)
		if w.IsZero() {
			return time.Time{}
		}
		if at := Resolve(w, r.loc); at.After(t) {
			return at
		}
	}
	return time.Time{}
}

// wallClock expresses t's wall-clock reading in its zone as the same reading in UTC, where
// every day has 24 hours, so schedules can be evaluated without DST.
func wallClock(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// Resolve turns a wall-clock reading (given as a UTC time with that reading) into the instant
// it denotes in loc: the first occurrence when the reading exists twice, the first instant
// after the gap when it does not exist.
func Resolve(wall time.Time, loc *time.Location) time.Time {
	naive := wall.Unix()
	var best time.Time
	// The offsets in force a day before and a day after cover both sides of any transition
	// near this reading.
	for _, probe := range []int64{naive - 86400, naive + 86400} {
		_, off := time.Unix(probe, 0).In(loc).Zone()
		c := time.Unix(naive-int64(off), int64(wall.Nanosecond())).In(loc)
		if wallClock(c).Equal(wall) && (best.IsZero() || c.Before(best)) {
			best = c
		}
	}
	if !best.IsZero() {
		return best
	}
	// In a gap: read with the earlier offset the reading lands after the transition; the
	// zone period it lands in starts at the transition, the first instant after the gap.
	_, off := time.Unix(naive-86400, 0).In(loc).Zone()
	start, _ := time.Unix(naive-int64(off), 0).In(loc).ZoneBounds()
	if start.IsZero() {
		return time.Unix(naive-int64(off), 0).In(loc)
	}
	return start
}

// offsetSchedule moves every occurrence of a wall-clock schedule by whole days.
type offsetSchedule struct {
	inner cron.Schedule
	days  int
}

func (o offsetSchedule) Next(w time.Time) time.Time {
	n := o.inner.Next(w.AddDate(0, 0, -o.days))
	if n.IsZero() {
		return n
	}
	return n.AddDate(0, 0, o.days)
}

// parseCron accepts a 5-field spec or a calendar descriptor. @every is refused: it counts
// from start-up rather than following the calendar. (TZ= prefixes, on which robfig/cron can
// panic, were refused by Parse: the zone is the window's own setting.)
func parseCron(spec string) (s cron.Schedule, err error) {
	if strings.HasPrefix(spec, "@every") {
		return nil, fmt.Errorf("%w %q: @every is not a calendar time; use a cron spec", ErrSyntax, spec)
	}
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("%w %q", ErrSyntax, spec)
		}
	}()
	parsed, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrSyntax, spec, err)
	}
	ss, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("%w %q: not a calendar schedule", ErrSyntax, spec)
	}
	ss.Location = time.UTC
	return ss, nil
}

// monthly is "the Nth (or last) DAY of every month at HH:MM".
type monthly struct {
	nth          int // 1..5, or -1 for last
	day          time.Weekday
	anyWeekday   bool // Monday to Friday
	hour, minute int
}

var ordinals = map[string]int{
	"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "last": -1,
	"1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5,
}

var weekdays = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// isMonthlyForm tells the two forms apart: a cron spec starts with its minute field (digits,
// "*" or a list) or with "@", a monthly form with a word.
func isMonthlyForm(spec string) bool {
	c := spec[0]
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func parseMonthly(spec string) (*monthly, error) {
	f := strings.Fields(strings.ToLower(spec))
	if f[0] == "the" {
		f = f[1:]
	}
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrSyntax, spec, why) }
	if len(f) != 4 || f[2] != "at" {
		return nil, bad(`want "[the] ORDINAL DAY at HH:MM", e.g. "second tuesday at 02:00"`)
	}
	m := &monthly{}
	var ok bool
	if m.nth, ok = ordinals[f[0]]; !ok {
		return nil, bad("ordinal must be first, second, third, fourth, fifth or last")
	}
	if f[1] == "weekday" {
		m.anyWeekday = true
	} else if m.day, ok = weekdays[f[1]]; !ok {
		return nil, bad(`day must be a weekday name or "weekday"`)
	}
	h, mi, err := parseClock(f[3])
	if err != nil {
		return nil, bad(err.Error())
	}
	m.hour, m.minute = h, mi
	return m, nil
}

func parseClock(s string) (h, m int, err error) {
	hs, ms, ok := strings.Cut(s, ":")
	if !ok || len(hs) < 1 || len(hs) > 2 || len(ms) != 2 {
		return 0, 0, fmt.Errorf("time must be HH:MM, not %q", s)
	}
	h, err1 := strconv.Atoi(hs)
	m, err2 := strconv.Atoi(ms)
	if err1 != nil || err2 != nil || h < 0 || h > 23 || m < 0 || m > 59 || hs[0] == '+' || hs[0] == '-' || ms[0] == '+' || ms[0] == '-' {
		return 0, 0, fmt.Errorf("time must be HH:MM between 00:00 and 23:59, not %q", s)
	}
	return h, m, nil
}

// maxMonths bounds the search: a fifth given weekday occurs in at least four months a year.
const maxMonths = 60

// Next implements cron.Schedule on wall-clock times in UTC.
func (m *monthly) Next(w time.Time) time.Time {
	y, mo := w.Year(), w.Month()
	for range maxMonths {
		if d, ok := m.dayIn(y, mo); ok {
			at := time.Date(y, mo, d, m.hour, m.minute, 0, 0, time.UTC)
			if at.After(w) {
				return at
			}
		}
		if mo == time.December {
			y, mo = y+1, time.January
		} else {
			mo++
		}
	}
	return time.Time{}
}

// dayIn returns the matching day of month, false when the month has none (no fifth Friday).
func (m *monthly) dayIn(y int, mo time.Month) (int, bool) {
	last := time.Date(y, mo+1, 0, 0, 0, 0, 0, time.UTC).Day()
	match := func(d int) bool {
		wd := time.Date(y, mo, d, 0, 0, 0, 0, time.UTC).Weekday()
		if m.anyWeekday {
			return wd != time.Saturday && wd != time.Sunday
		}
		return wd == m.day
	}
	if m.nth < 0 {
		for d := last; d >= 1; d-- {
			if match(d) {
				return d, true
			}
		}
		return 0, false
	}
	n := 0
	for d := 1; d <= last; d++ {
		if match(d) {
			if n++; n == m.nth {
				return d, true
			}
		}
	}
	return 0, false
}
