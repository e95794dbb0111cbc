package slack

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/notify/notifytest"
)

func TestMrkdwn(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"},
		{"<!channel> ping", "&lt;!channel&gt; ping"},
		{"## Bug fixes", "*Bug fixes*"},
		{"### Heading ###", "*Heading*"},
		{"**bold** and __also__", "*bold* and *also*"},
		{"- one\n* two\n  + nested", "• one\n• two\n  • nested"},
		{"see [PR #12](https://github.com/twitter/twemproxy/pull/12)", "see <https://github.com/twitter/twemproxy/pull/12|PR #12>"},
		{"[a&b](https://x.test/?q=1&r=<2>)", "<https://x.test/?q=1&amp;r=%3C2%3E|a&amp;b>"},
		{"[relative](/docs)", "[relative](/docs)"},
		{"nul\x000\x00 text", "nul0 text"},
		{"line\r\nbreak", "line\nbreak"},
	} {
		if got := mrkdwn(tc.in); got != tc.want {
			t.Errorf("mrkdwn(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCut(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"a &amp; b", 5, "a…"},
		{"see <https://x.test/a|link> now", 12, "see…"},
		{"see <https://x.test|l> now", 24, "see <https://x.test|l>…"},
		{"ünïcödé ünïcödé", 9, "ünïcödé…"},
	} {
		if got := cut(tc.in, tc.max); got != tc.want {
			t.Errorf("cut(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// FuzzSummary checks what any release notes become: valid UTF-8 within Slack's limit, with
// no half link or entity left by the cut.
func FuzzSummary(f *testing.F) {
	f.Add("## 0.5.1\n- fix [#1](https://x.test/1) & <b>\n**bold**", 40)
	f.Add(strings.Repeat("&<>", 1200), 3000)
	f.Fuzz(func(t *testing.T, md string, max int) {
		if !utf8.ValidString(md) || max < 1 || max > 5000 {
			return
		}
		got := cut(mrkdwn(md), max)
		if n := utf8.RuneCountInString(got); n > max {
			t.Fatalf("%d characters, limit %d", n, max)
		}
		if i := strings.LastIndexByte(got, '<'); i > strings.LastIndexByte(got, '>') {
			t.Fatalf("unclosed link in %q", got)
		}
		if i := strings.LastIndexByte(got, '&'); i >= 0 && !strings.Contains(got[i:], ";") {
			t.Fatalf("broken entity in %q", got)
		}
	})
}

// The rendered message, as Slack receives it, for review.
func TestRenderGolden(t *testing.T) {
	text, blocks := render(notifytest.Release())
	b, err := json.MarshalIndent(map[string]any{"text": text, "blocks": blocks}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want, err := readGolden(t, "release.json", b)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(want) {
		t.Errorf("render =\n%s\nwant (testdata/release.json)\n%s", b, want)
	}
}

func BenchmarkRender(b *testing.B) {
	m := notifytest.Release()
	m.Summary = strings.Repeat("## Fixes\n- crash on [bad reply](https://x.test/1) & more <b>\n", 200)
	for b.Loop() {
		render(m)
	}
}

// TestSeverityShownIsTheAdvisorys: the Severity field Slack shows is the advisory's own
// rating; before, every advisory rated neither low nor medium read "critical".
func TestSeverityShownIsTheAdvisorys(t *testing.T) {
	for _, rating := range []string{"low", "medium", "high", "critical"} {
		m, err := notify.Render([]byte(`{"kind":"advisory.new","advisory":{"source":"twitter/twemproxy","id":"GHSA-x","summary":"crash","severity":"` + rating + `"}}`))
		if err != nil {
			t.Fatal(err)
		}
		_, blocks := render(m)
		raw, err := json.Marshal(blocks)
		if err != nil {
			t.Fatal(err)
		}
		if want := `*Severity*\n` + rating; !strings.Contains(string(raw), want) {
			t.Errorf("%s advisory: blocks lack %q:\n%s", rating, want, raw)
		}
		if rating != "critical" && strings.Contains(string(raw), "critical") {
			t.Errorf("%s advisory shown as critical:\n%s", rating, raw)
		}
	}
}
