package window_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/window"
)

func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRecurrenceNext checks the openings of every recurrence form, including the DST days of
// three zones (Lord Howe moves by 30 minutes). Every expected instant was read off a calendar
// and `zdump -v` for the zone; the offsets in the strings say which side of a change it is.
func TestRecurrenceNext(t *testing.T) {
	cases := []struct {
		name   string
		spec   string
		zone   string
		offset int
		after  string
		want   []string
	}{
		{"second tuesday (patch tuesday), across the March change", "second tuesday at 02:00", "Europe/Berlin", 0, "2026-01-01T00:00:00+01:00",
			[]string{"2026-01-13T02:00:00+01:00", "2026-02-10T02:00:00+01:00", "2026-03-10T02:00:00+01:00", "2026-04-14T02:00:00+02:00", "2026-05-12T02:00:00+02:00"}},
		{"the/abbreviations/1st-5th spellings", "The 2nd TUE at 2:00", "Europe/Berlin", 0, "2026-01-01T00:00:00+01:00",
			[]string{"2026-01-13T02:00:00+01:00", "2026-02-10T02:00:00+01:00"}},
		{"last friday", "last friday at 22:00", "UTC", 0, "2026-01-01T00:00:00Z",
			[]string{"2026-01-30T22:00:00Z", "2026-02-27T22:00:00Z", "2026-03-27T22:00:00Z", "2026-04-24T22:00:00Z", "2026-05-29T22:00:00Z"}},
		{"fifth friday: months without one have no window", "fifth friday at 20:00", "UTC", 0, "2026-01-01T00:00:00Z",
			[]string{"2026-01-30T20:00:00Z", "2026-05-29T20:00:00Z", "2026-07-31T20:00:00Z"}},
		{"first weekday skips weekends, across the November change", "first weekday at 09:00", "America/New_York", 0, "2026-07-15T00:00:00-04:00",
			[]string{"2026-08-03T09:00:00-04:00", "2026-09-01T09:00:00-04:00", "2026-10-01T09:00:00-04:00", "2026-11-02T09:00:00-05:00"}},
		{"last weekday", "last weekday at 18:00", "UTC", 0, "2026-01-01T00:00:00Z",
			[]string{"2026-01-30T18:00:00Z", "2026-02-27T18:00:00Z", "2026-03-31T18:00:00Z"}},
		{"2 days after the second tuesday", "second tuesday at 02:00", "Europe/Berlin", 2, "2026-01-01T00:00:00+01:00",
			[]string{"2026-01-15T02:00:00+01:00", "2026-02-12T02:00:00+01:00"}},
		{"offset across month ends", "last friday at 22:00", "UTC", 3, "2026-01-01T00:00:00Z",
			[]string{"2026-02-02T22:00:00Z", "2026-03-02T22:00:00Z", "2026-03-30T22:00:00Z"}},
		{"offset across the year end", "last friday at 22:00", "UTC", 7, "2026-11-15T00:00:00Z",
			[]string{"2026-12-04T22:00:00Z", "2027-01-01T22:00:00Z", "2027-02-05T22:00:00Z"}},
		{"negative offset back across the year end", "first monday at 10:00", "UTC", -3, "2026-12-15T00:00:00Z",
			[]string{"2027-01-01T10:00:00Z", "2027-01-29T10:00:00Z"}},
		{"offset onto a leap day", "fourth saturday at 03:00", "UTC", 5, "2024-02-02T00:00:00Z",
			[]string{"2024-02-29T03:00:00Z", "2024-03-28T03:00:00Z"}},
		{"the same offset in a common year rolls into March", "fourth saturday at 03:00", "UTC", 1, "2026-02-01T00:00:00Z",
			[]string{"2026-03-01T03:00:00Z"}},
		{"last tuesday of a leap February", "last tuesday at 03:00", "UTC", 0, "2028-02-01T00:00:00Z",
			[]string{"2028-02-29T03:00:00Z"}},
		{"cron leap day", "0 0 29 2 *", "UTC", 0, "2025-01-01T00:00:00Z",
			[]string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
		{"cron spec with an offset", "0 2 * * 2", "UTC", 1, "2026-01-01T00:00:00Z",
			[]string{"2026-01-07T02:00:00Z", "2026-01-14T02:00:00Z"}},
		{"cron descriptor", "@monthly", "Europe/Berlin", 0, "2026-01-15T00:00:00+01:00",
			[]string{"2026-02-01T00:00:00+01:00", "2026-03-01T00:00:00+01:00"}},

		// Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET.
		{"Berlin skipped 02:30 opens when the gap ends", "30 2 * * *", "Europe/Berlin", 0, "2026-03-28T00:00:00+01:00",
			[]string{"2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
		{"Berlin repeated 02:30 opens once, the first time", "30 2 * * *", "Europe/Berlin", 0, "2026-10-24T12:00:00+02:00",
			[]string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
		{"Berlin: asked during the repeated hour, the second 02:30 is not a new opening", "30 2 * * *", "Europe/Berlin", 0, "2026-10-25T02:15:00+01:00",
			[]string{"2026-10-26T02:30:00+01:00"}},
		{"Berlin: every 30 minutes over the repeated hour", "*/30 2 * * *", "Europe/Berlin", 0, "2026-10-25T01:00:00+02:00",
			[]string{"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:00:00+01:00"}},
		{"Berlin last sunday of March at 02:30 is the DST day", "last sunday at 02:30", "Europe/Berlin", 0, "2026-03-01T00:00:00+01:00",
			[]string{"2026-03-29T03:00:00+02:00", "2026-04-26T02:30:00+02:00"}},
		{"Berlin last sunday of October at 02:30 opens in CEST", "last sunday at 02:30", "Europe/Berlin", 0, "2026-10-01T00:00:00+02:00",
			[]string{"2026-10-25T02:30:00+02:00", "2026-11-29T02:30:00+01:00"}},

		// America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
		{"New York skipped 02:30", "30 2 * * *", "America/New_York", 0, "2026-03-07T12:00:00-05:00",
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
		{"New York second sunday of March at 02:00 is inside the gap", "second sunday at 02:00", "America/New_York", 0, "2026-03-01T00:00:00-05:00",
			[]string{"2026-03-08T03:00:00-04:00", "2026-04-12T02:00:00-04:00"}},
		{"New York repeated 01:30 opens in EDT only", "first sunday at 01:30", "America/New_York", 0, "2026-10-15T00:00:00-04:00",
			[]string{"2026-11-01T01:30:00-04:00", "2026-12-06T01:30:00-05:00"}},
		{"New York daily 01:30 over the repeated hour", "30 1 * * *", "America/New_York", 0, "2026-10-31T12:00:00-04:00",
			[]string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},

		// Australia/Lord_Howe: 2026-04-05 02:00 +11 -> 01:30 +10:30; 2026-10-04 02:00 +10:30 -> 02:30 +11.
		{"Lord Howe repeated 01:45 (30-minute shift) opens once", "45 1 * * *", "Australia/Lord_Howe", 0, "2026-04-04T12:00:00+11:00",
			[]string{"2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"}},
		{"Lord Howe first sunday of April at 01:45", "first sunday at 01:45", "Australia/Lord_Howe", 0, "2026-04-01T00:00:00+11:00",
			[]string{"2026-04-05T01:45:00+11:00", "2026-05-03T01:45:00+10:30"}},
		{"Lord Howe skipped 02:15 opens at 02:30 +11", "15 2 * * *", "Australia/Lord_Howe", 0, "2026-10-03T12:00:00+10:30",
			[]string{"2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"}},
		{"Lord Howe: a gap of 30 minutes folds three openings into one", "*/10 2 * * *", "Australia/Lord_Howe", 0, "2026-10-04T01:00:00+10:30",
			[]string{"2026-10-04T02:30:00+11:00", "2026-10-04T02:40:00+11:00", "2026-10-04T02:50:00+11:00", "2026-10-05T02:00:00+11:00"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			loc := zone(t, c.zone)
			r, err := window.Parse(c.spec, loc, c.offset)
			if err != nil {
				t.Fatal(err)
			}
			at := mustTime(t, c.after)
			for i, w := range c.want {
				next := r.Next(at)
				if next.Location() != loc {
					t.Errorf("opening %d is in %v, want %v", i, next.Location(), loc)
				}
				if got := next.Format(time.RFC3339); got != w {
					t.Fatalf("opening %d after %s = %s, want %s", i, at.Format(time.RFC3339), got, w)
				}
				at = next
			}
		})
	}
}

// TestResolve pins the documented DST rule on its own: a skipped reading becomes the first
// instant after the gap, a repeated one its first occurrence.
func TestResolve(t *testing.T) {
	cases := []struct {
		zone, wall, want string
	}{
		{"Europe/Berlin", "2026-03-29T02:00:00Z", "2026-03-29T01:00:00Z"},
		{"Europe/Berlin", "2026-03-29T02:59:00Z", "2026-03-29T01:00:00Z"},
		{"Europe/Berlin", "2026-03-29T03:00:00Z", "2026-03-29T01:00:00Z"},
		{"Europe/Berlin", "2026-03-29T01:59:00Z", "2026-03-29T00:59:00Z"},
		{"Europe/Berlin", "2026-10-25T02:00:00Z", "2026-10-25T00:00:00Z"},
		{"Europe/Berlin", "2026-10-25T02:59:00Z", "2026-10-25T00:59:00Z"},
		{"Europe/Berlin", "2026-10-25T03:00:00Z", "2026-10-25T02:00:00Z"},
		{"America/New_York", "2026-03-08T02:30:00Z", "2026-03-08T07:00:00Z"},
		{"America/New_York", "2026-11-01T01:00:00Z", "2026-11-01T05:00:00Z"},
		{"Australia/Lord_Howe", "2026-10-04T02:00:00Z", "2026-10-03T15:30:00Z"},
		{"Australia/Lord_Howe", "2026-10-04T02:29:00Z", "2026-10-03T15:30:00Z"},
		{"Australia/Lord_Howe", "2026-04-05T01:30:00Z", "2026-04-04T14:30:00Z"},
		{"Australia/Lord_Howe", "2026-04-05T02:00:00Z", "2026-04-04T15:30:00Z"},
		{"UTC", "2026-06-01T12:00:00Z", "2026-06-01T12:00:00Z"},
	}
	for _, c := range cases {
		got := window.Resolve(mustTime(t, c.wall), zone(t, c.zone)).UTC().Format(time.RFC3339)
		if got != c.want {
			t.Errorf("%s wall %s = %s UTC, want %s", c.zone, c.wall[:16], got, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	utc := time.UTC
	cases := []struct {
		spec   string
		offset int
		want   string
	}{
		{"", 0, "empty"},
		{"second tuesday", 0, "want \"[the] ORDINAL DAY at HH:MM\""},
		{"sixth tuesday at 02:00", 0, "ordinal must be"},
		{"second funday at 02:00", 0, "weekday name"},
		{"second tuesday at 25:00", 0, "between 00:00 and 23:59"},
		{"second tuesday at 2pm", 0, "HH:MM"},
		{"second tuesday at -1:00", 0, "HH:MM"},
		{"second tuesday on 02:00", 0, "want"},
		{"the", 0, "want"},
		{"0 2 * *", 0, "invalid recurrence"},
		{"61 2 * * *", 0, "invalid recurrence"},
		{"0 2 8-14 * 2#2", 0, "invalid recurrence"},
		{"TZ=0", 0, "time_zone"},
		{"CRON_TZ=Europe/Berlin 0 2 * * *", 0, "time_zone"},
		{"@every 1h", 0, "@every"},
		{"second tuesday at 02:00", 28, "offset"},
		{"second tuesday at 02:00", -28, "offset"},
	}
	for _, c := range cases {
		_, err := window.Parse(c.spec, utc, c.offset)
		if err == nil || !errors.Is(err, window.ErrSyntax) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q, %d) = %v, want an ErrSyntax containing %q", c.spec, c.offset, err, c.want)
		}
	}
	if _, err := window.Parse("@daily", nil, 0); err == nil {
		t.Error("no error without a zone")
	}
}

func TestString(t *testing.T) {
	r, err := window.Parse("  second   tuesday at 02:00 ", zone(t, "Europe/Berlin"), 2)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.String(), "2 days after second tuesday at 02:00 (Europe/Berlin)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	r, _ = window.Parse("0 2 * * *", time.UTC, -1)
	if got, want := r.String(), "1 day before 0 2 * * * (UTC)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// FuzzParse: the parser never panics, a parsed recurrence moves strictly forward, and its
// normalised spec parses to the same schedule.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"second tuesday at 02:00", "last friday at 22:00", "the 5th fri at 0:00", "first weekday at 09:30",
		"0 2 * * 2", "*/15 1-3 * * *", "@weekly", "TZ=0", "CRON_TZ=x", "@every 1h", "the", "last weekday at 23:59", "0 0 31 2 *"} {
		f.Add(s, 0)
		f.Add(s, 3)
	}
	loc, err := time.LoadLocation("Australia/Lord_Howe")
	if err != nil {
		f.Fatal(err)
	}
	start := time.Date(2026, 10, 3, 0, 0, 0, 0, loc)
	f.Fuzz(func(t *testing.T, spec string, offset int) {
		r, err := window.Parse(spec, loc, offset)
		if err != nil {
			if !errors.Is(err, window.ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		again, err := window.Parse(r.Spec(), loc, r.OffsetDays())
		if err != nil {
			t.Fatalf("normalised spec %q does not parse: %v", r.Spec(), err)
		}
		at := start
		for range 3 {
			next := r.Next(at)
			if next.IsZero() {
				break
			}
			if !next.After(at) {
				t.Fatalf("%q: Next(%v) = %v, not after", spec, at, next)
			}
			if other := again.Next(at); !other.Equal(next) {
				t.Fatalf("%q and its normalised form differ: %v vs %v", spec, next, other)
			}
			at = next
		}
	})
}
