package notify

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/patchctl/patchctl/store"
)

// Envelope is what producers put in the outbox: either a ready Message, or a fact
// (a release, an advisory, the start of tracking) rendered when it is sent, so the
// wording can improve without rewriting stored alerts.
type Envelope struct {
	Kind     string          `json:"kind"`
	Message  *Message        `json:"message,omitempty"`
	Release  *store.Release  `json:"release,omitempty"`
	Advisory *store.Advisory `json:"advisory,omitempty"`
	Source   string          `json:"source,omitempty"`
	Latest   *store.Release  `json:"latest,omitempty"`
	Count    int             `json:"count,omitempty"`
	Security int             `json:"security,omitempty"`
	// Operation is a deploy or rollback outcome; its fields sit at the top level.
	*Operation
	Rollout *RolloutNote `json:"rollout,omitempty"`
	// Thread groups messages: a Slack bot replies in the thread of the first message
	// sent with the same Thread.
	Thread string `json:"thread,omitempty"`
}

// Encode serialises an envelope for tx.Enqueue.
func (e Envelope) Encode() ([]byte, error) { return json.Marshal(e) }

// Render turns an outbox payload into the message to send.
func Render(payload []byte) (Message, error) {
	var e Envelope
	if err := json.Unmarshal(payload, &e); err != nil {
		return Message{}, fmt.Errorf("decode outbox payload: %w", err)
	}
	return renderEnvelope(e)
}

func renderEnvelope(e Envelope) (Message, error) {
	// A ready message renders as it is, whatever its kind: an outbox written by a newer
	// patchctl still goes out.
	if e.Message != nil {
		return *e.Message, nil
	}
	fn, ok := renderers[e.Kind]
	if !ok {
		return Message{}, fmt.Errorf("outbox payload of kind %q has nothing to render", e.Kind)
	}
	return fn(e)
}

func releaseMessage(r store.Release) Message {
	m := Message{
		Kind:     KindRelease,
		Title:    fmt.Sprintf("%s %s released", r.Source, r.Version),
		Summary:  r.Notes,
		Severity: SeverityInfo,
		Security: r.Security,
		Version:  r.Version,
		Date:     r.PublishedAt,
		URL:      r.URL,
	}
	switch {
	case r.Prerelease:
		m.Title = fmt.Sprintf("%s %s pre-release published", r.Source, r.Version)
	case r.TagOnly:
		m.Title = fmt.Sprintf("%s tagged %s (a git tag, no GitHub release)", r.Source, r.Tag)
	}
	if r.Security {
		m.Kind, m.Severity = KindSecurity, SeverityWarning
		m.Fields = append(m.Fields, Field{Key: "Why security-relevant", Value: strings.Join(r.Reasons, ", ")})
	}
	if m.Summary == "" {
		m.Summary = "No release notes."
	}
	return m
}

func advisoryMessage(a store.Advisory) Message {
	m := Message{
		Kind:     KindSecurity,
		Title:    fmt.Sprintf("Security advisory for %s: %s", a.Source, a.Summary),
		Summary:  a.Summary,
		Severity: SeverityCritical,
		Security: true,
		Version:  a.PatchedVersion,
		Date:     a.PublishedAt,
		URL:      a.URL,
		Fields:   []Field{{Key: "Advisory", Value: a.ID}},
	}
	// GitHub rates advisories low, medium, high or critical; that rating is what people
	// read. Only the urgency (log level, digest order) is coarser.
	m.AdvisorySeverity = strings.ToLower(strings.TrimSpace(a.Severity))
	if m.AdvisorySeverity == "low" || m.AdvisorySeverity == "medium" {
		m.Severity = SeverityWarning
	}
	if a.CVE != "" {
		m.Fields = append(m.Fields, Field{Key: "CVE", Value: a.CVE})
	}
	if a.VulnerableRange != "" {
		m.Fields = append(m.Fields, Field{Key: "Affected", Value: a.VulnerableRange})
	}
	return m
}

func trackingMessage(e Envelope) Message {
	m := Message{
		Kind:     KindRelease,
		Title:    fmt.Sprintf("patchctl now tracks %s", e.Source),
		Summary:  fmt.Sprintf("%d releases and tags known, %d of them security-relevant.", e.Count, e.Security),
		Severity: SeverityInfo,
	}
	if e.Latest != nil {
		m.Summary += fmt.Sprintf(" The latest stable version is %s.", e.Latest.Version)
		m.Version, m.Date, m.URL = e.Latest.Version, e.Latest.PublishedAt, e.Latest.URL
	}
	return m
}
