package window_test

import (
	"testing"
	"time"

	"github.com/patchctl/patchctl/window"
)

func newWindow(t *testing.T, spec, zoneName string, dur, cutoff time.Duration, blackouts ...window.Blackout) *window.Window {
	t.Helper()
	r, err := window.Parse(spec, zone(t, zoneName), 0)
	if err != nil {
		t.Fatal(err)
	}
	return &window.Window{Name: "w", Kind: window.Production, Recurrence: r, Duration: dur, Cutoff: cutoff, Blackouts: blackouts}
}

func date(t *testing.T, s string) window.Date {
	t.Helper()
	d, err := window.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestOccurrenceBounds(t *testing.T) {
	// Fall-back night in Berlin: 4 hours of real time from 01:00 CEST end at 04:00 CET.
	w := newWindow(t, "last sunday at 01:00", "Europe/Berlin", 4*time.Hour, time.Hour)
	o, ok := w.Next(mustTime(t, "2026-10-01T00:00:00Z"))
	if !ok {
		t.Fatal("no occurrence")
	}
	for _, c := range []struct{ name, got, want string }{
		{"open", o.Open.Format(time.RFC3339), "2026-10-25T01:00:00+02:00"},
		{"close", o.Close.Format(time.RFC3339), "2026-10-25T04:00:00+01:00"},
		{"last start", o.LastStart.Format(time.RFC3339), "2026-10-25T03:00:00+01:00"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
	for _, c := range []struct {
		at             string
		open, canStart bool
	}{
		{"2026-10-24T22:59:59Z", false, false},
		{"2026-10-24T23:00:00Z", true, true}, // the opening instant itself
		{"2026-10-25T01:59:59Z", true, true},
		{"2026-10-25T02:00:00Z", true, false}, // past the cutoff: hosts in flight finish
		{"2026-10-25T03:00:00Z", false, false},
	} {
		at := mustTime(t, c.at)
		if o.Contains(at) != c.open || o.CanStart(at) != c.canStart {
			t.Errorf("at %s: open %v can start %v, want %v %v", c.at, o.Contains(at), o.CanStart(at), c.open, c.canStart)
		}
		got, ok := w.At(at)
		if ok != c.open || (ok && !got.Open.Equal(o.Open)) {
			t.Errorf("At(%s) = %v %v, want open %v", c.at, got.Open, ok, c.open)
		}
	}
}

func TestBlackouts(t *testing.T) {
	freeze := window.Blackout{From: date(t, "2026-12-18"), To: date(t, "2027-01-04"), Reason: "year-end freeze"}
	// Nightly 22:00-02:00 New York; the freeze starts at midnight of Dec 18 local time.
	w := newWindow(t, "0 22 * * *", "America/New_York", 4*time.Hour, 30*time.Minute, freeze)
	got := w.Upcoming(mustTime(t, "2026-12-17T12:00:00-05:00"), 3)
	if len(got) != 3 {
		t.Fatalf("%d occurrences", len(got))
	}
	// Dec 17 opens, but the freeze starting at midnight closes it early.
	if got[0].Blocked() || got[0].Trimmed == nil || got[0].Close.Format(time.RFC3339) != "2026-12-18T00:00:00-05:00" ||
		got[0].LastStart.Format(time.RFC3339) != "2026-12-17T23:30:00-05:00" {
		t.Errorf("Dec 17 = %+v, want trimmed to midnight", got[0])
	}
	// Dec 18 and 19 open inside the freeze: they do not open.
	for _, o := range got[1:] {
		if !o.Blocked() || o.Blackout.Reason != "year-end freeze" {
			t.Errorf("%s not blocked", o.Open)
		}
		if _, ok := w.At(o.Open.Add(time.Minute)); ok {
			t.Errorf("blocked window reported open at %s", o.Open)
		}
	}
	// The freeze is inclusive of its last day; the next opening is Jan 5.
	after := w.Upcoming(mustTime(t, "2027-01-04T12:00:00-05:00"), 2)
	if after[0].Blocked() == false || after[1].Blocked() || after[1].Open.Format(time.RFC3339) != "2027-01-05T22:00:00-05:00" {
		t.Errorf("after the freeze: %v blocked %v, %v blocked %v", after[0].Open, after[0].Blocked(), after[1].Open, after[1].Blocked())
	}
}

func TestBlackoutOverlap(t *testing.T) {
	b := func(from, to string) window.Blackout { return window.Blackout{From: date(t, from), To: date(t, to)} }
	cases := []struct {
		a, b window.Blackout
		want bool
	}{
		{b("2026-12-20", "2026-12-31"), b("2026-12-31", "2027-01-02"), true}, // share the 31st
		{b("2026-12-20", "2026-12-30"), b("2026-12-31", "2027-01-02"), false},
		{b("2026-12-01", "2026-12-31"), b("2026-12-10", "2026-12-11"), true},
		{b("2026-12-10", "2026-12-10"), b("2026-12-10", "2026-12-10"), true},
	}
	for _, c := range cases {
		if c.a.Overlaps(c.b) != c.want || c.b.Overlaps(c.a) != c.want {
			t.Errorf("%v overlaps %v: want %v", c.a, c.b, c.want)
		}
	}
}

// TestBlackoutMidnightInGap: in a zone whose DST change happens at midnight, the freeze
// starts at the first instant of the day that exists.
func TestBlackoutMidnightInGap(t *testing.T) {
	// America/Santiago springs forward at 24:00 on 2026-09-05 (00:00 becomes 01:00 on the 6th).
	loc := zone(t, "America/Santiago")
	b := window.Blackout{From: date(t, "2026-09-06"), To: date(t, "2026-09-06")}
	start, end := b.Span(loc)
	if got := start.Format(time.RFC3339); got != "2026-09-06T01:00:00-03:00" {
		t.Errorf("start = %s", got)
	}
	if got := end.Format(time.RFC3339); got != "2026-09-07T00:00:00-03:00" {
		t.Errorf("end = %s", got)
	}
}

func TestUpcomingIncludesTheOpenOne(t *testing.T) {
	w := newWindow(t, "second tuesday at 02:00", "Europe/Berlin", 4*time.Hour, time.Hour)
	got := w.Upcoming(mustTime(t, "2026-01-13T03:00:00+01:00"), 2)
	if len(got) != 2 || got[0].Open.Format(time.RFC3339) != "2026-01-13T02:00:00+01:00" || got[1].Open.Format(time.RFC3339) != "2026-02-10T02:00:00+01:00" {
		t.Errorf("upcoming = %v", got)
	}
}

func TestParseDate(t *testing.T) {
	for _, s := range []string{"2026-02-30", "2026-1-5", "tomorrow", ""} {
		if _, err := window.ParseDate(s); err == nil {
			t.Errorf("ParseDate(%q) accepted", s)
		}
	}
	if d := date(t, "2028-02-29"); d.String() != "2028-02-29" {
		t.Errorf("round trip = %s", d)
	}
}

func TestUpcomingAcrossWindows(t *testing.T) {
	staging := newWindow(t, "second tuesday at 02:00", "Europe/Berlin", 4*time.Hour, time.Hour)
	nightly := newWindow(t, "0 1 * * *", "America/New_York", 2*time.Hour, 0)
	got := window.Upcoming([]*window.Window{staging, nightly}, mustTime(t, "2026-01-12T00:00:00Z"), 4)
	want := []string{"2026-01-12T01:00:00-05:00", "2026-01-13T02:00:00+01:00", "2026-01-13T01:00:00-05:00", "2026-01-14T01:00:00-05:00"}
	if len(got) != len(want) {
		t.Fatalf("%d occurrences", len(got))
	}
	for i, o := range got {
		if o.Open.Format(time.RFC3339) != want[i] {
			t.Errorf("occurrence %d = %s, want %s", i, o.Open.Format(time.RFC3339), want[i])
		}
	}
}
