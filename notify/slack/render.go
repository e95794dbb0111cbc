package slack

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	slackgo "github.com/slack-go/slack"

	"github.com/patchctl/patchctl/notify"
)

// Slack's Block Kit limits, in characters. Past them Slack rejects the whole message
// with invalid_blocks, so every text is cut to fit.
const (
	maxHeader      = 150
	maxSectionText = 3000
	maxFields      = 10
	maxFieldText   = 2000
	maxContextText = 3000
	maxFallback    = 3000 // Slack accepts 40000; a notification needs far less
)

// render turns m into the notification text and the blocks:
//
//	header   ":rotating_light: [SECURITY] twemproxy 0.5.1 released"
//	section  ":warning: Security relevant" (security messages only)
//	section  fields: Version, Date, Severity, then m.Fields
//	section  the notes, Markdown converted to mrkdwn
//	context  release link · kind
func render(m notify.Message) (string, []slackgo.Block) {
	headline := m.Headline()
	fallback := escape(headline)
	if m.URL != "" {
		fallback += " " + link(m.URL, "")
	}
	fallback = cut(fallback, maxFallback)

	header := headline
	if m.Security {
		header = ":rotating_light: " + header
	}
	blocks := []slackgo.Block{slackgo.NewHeaderBlock(
		slackgo.NewTextBlockObject(slackgo.PlainTextType, notify.Truncate(header, maxHeader), true, false))}

	if m.Security {
		blocks = append(blocks, section(":warning: *Security relevant:* check exposed hosts and plan a rollout."))
	}

	if fields := fieldBlocks(m); len(fields) > 0 {
		blocks = append(blocks, slackgo.NewSectionBlock(nil, fields, nil))
	}

	if notes := strings.TrimSpace(m.Summary); notes != "" {
		// Converting more than twice what fits is wasted work: mrkdwn shrinks text little.
		blocks = append(blocks, section(cut(mrkdwn(notify.Truncate(notes, 2*maxSectionText)), maxSectionText)))
	}

	var ctx []string
	if m.URL != "" {
		ctx = append(ctx, link(m.URL, "Release notes"))
	}
	if m.Kind != "" {
		ctx = append(ctx, escape(string(m.Kind)))
	}
	if len(ctx) > 0 {
		blocks = append(blocks, slackgo.NewContextBlock("",
			slackgo.NewTextBlockObject(slackgo.MarkdownType, cut(strings.Join(ctx, " · "), maxContextText), false, false)))
	}
	return fallback, blocks
}

func section(text string) *slackgo.SectionBlock {
	return slackgo.NewSectionBlock(slackgo.NewTextBlockObject(slackgo.MarkdownType, text, false, false), nil, nil)
}

// fieldBlocks lays out the key facts two by two; past Slack's ten fields the last one
// says how many were left out.
func fieldBlocks(m notify.Message) []*slackgo.TextBlockObject {
	kv := []notify.Field{{Key: "Version", Value: m.Version}, {Key: "Date", Value: m.DateString()}, {Key: "Severity", Value: m.ShownSeverity()}}
	kv = append(kv, m.Fields...)
	var out []*slackgo.TextBlockObject
	for i, f := range kv {
		if f.Value == "" {
			continue
		}
		if len(out) == maxFields-1 && i < len(kv)-1 {
			out = append(out, slackgo.NewTextBlockObject(slackgo.MarkdownType, fmt.Sprintf("*…*\n%d more", len(kv)-i), false, false))
			break
		}
		text := cut("*"+escape(strings.TrimSpace(f.Key))+"*\n"+escape(f.Value), maxFieldText)
		out = append(out, slackgo.NewTextBlockObject(slackgo.MarkdownType, text, false, false))
	}
	return out
}

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// escape makes s literal in mrkdwn: Slack reads <...> as links and mentions.
func escape(s string) string { return escaper.Replace(s) }

// link is a mrkdwn link; the URL was validated by Message.Validate.
func link(u, text string) string {
	u = strings.NewReplacer("&", "&amp;", "<", "%3C", ">", "%3E", "|", "%7C").Replace(u)
	if text == "" {
		return "<" + u + ">"
	}
	return "<" + u + "|" + escape(text) + ">"
}

// markdownREs are compiled on first use, not at package initialisation: every patchctl
// command links this package, few render release notes.
var markdownREs = sync.OnceValue(func() (r struct{ heading, bullet, bold, link, mark *regexp.Regexp }) {
	r.heading = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t#]*$`)
	r.bullet = regexp.MustCompile(`(?m)^([ \t]*)[-*+][ \t]+`)
	r.bold = regexp.MustCompile(`\*\*([^*\n]+)\*\*|__([^_\n]+)__`)
	r.link = regexp.MustCompile(`\[([^\]\n]+)\]\((https?://[^)\s]+)\)`)
	r.mark = regexp.MustCompile("\x00[0-9]+\x00")
	return r
})

// mrkdwn converts the GitHub Markdown of release notes to Slack's mrkdwn: headings and
// bold become *bold*, list markers become bullets, [text](url) becomes a link. Everything
// else is escaped and shown as written.
func mrkdwn(md string) string {
	re := markdownREs()
	// NUL marks link placeholders below, so none may come from the notes.
	s := strings.NewReplacer("\r\n", "\n", "\x00", "").Replace(md)
	// Links first, on the raw text, with placeholders so escaping leaves them alone.
	var links []string
	s = re.link.ReplaceAllStringFunc(s, func(l string) string {
		p := re.link.FindStringSubmatch(l)
		links = append(links, link(p[2], p[1]))
		return fmt.Sprintf("\x00%d\x00", len(links)-1)
	})
	s = escape(s)
	s = re.bold.ReplaceAllString(s, "*$1$2*")
	s = re.heading.ReplaceAllString(s, "*$1*")
	s = re.bullet.ReplaceAllString(s, "$1• ")
	return re.mark.ReplaceAllStringFunc(s, func(mark string) string {
		i, _ := strconv.Atoi(mark[1 : len(mark)-1])
		return links[i]
	})
}

// cut truncates mrkdwn to max characters without leaving half a link or entity behind,
// which Slack would show as garbage.
func cut(s string, max int) string {
	t := notify.Truncate(s, max)
	if t == s {
		return s
	}
	t = strings.TrimSuffix(t, "…")
	if i := strings.LastIndexByte(t, '<'); i > strings.LastIndexByte(t, '>') {
		t = t[:i]
	}
	if i := strings.LastIndexByte(t, '&'); i >= 0 && !strings.Contains(t[i:], ";") {
		t = t[:i]
	}
	return strings.TrimRight(t, " \t\n") + "…"
}
