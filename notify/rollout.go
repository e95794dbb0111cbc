package notify

import (
	"fmt"
	"strings"
)

// RolloutNote is a fact about a fleet rollout, rendered when it is sent. Every note of
// one rollout carries the same Thread ("rollout:<id>"): a Slack bot posts the first as a
// message and every later one as a reply in its thread.
type RolloutNote struct {
	ID      string            `json:"id"`
	Event   string            `json:"-"` // the outbox kind
	Version string            `json:"version"`
	Policy  string            `json:"policy"`
	Wave    string            `json:"wave,omitempty"`
	Host    string            `json:"host,omitempty"`
	Reason  string            `json:"reason,omitempty"`
	Waves   []RolloutWaveNote `json:"waves,omitempty"`
}

// RolloutWaveNote is a wave's size in a rollout note.
type RolloutWaveNote struct {
	Name  string `json:"name"`
	Hosts int    `json:"hosts"`
}

// Rollout events that reach Slack; each is an outbox kind rendered from Envelope.Rollout.
const (
	RolloutStarted    = "rollout.started"
	RolloutWaveStart  = "rollout.wave.started"
	RolloutWavePassed = "rollout.wave.passed"
	RolloutWaveFailed = "rollout.wave.failed"
	RolloutHostFailed = "rollout.host.failed"
	RolloutPaused     = "rollout.paused"
	RolloutResumed    = "rollout.resumed"
	RolloutPromoted   = "rollout.promoted"
	RolloutAborting   = "rollout.aborting"
	RolloutSucceeded  = "rollout.succeeded"
	RolloutAborted    = "rollout.aborted"
	RolloutRolledBack = "rollout.rolled_back"
	RolloutFailed     = "rollout.failed"
)

// RolloutEvents lists every rollout event with a renderer.
var RolloutEvents = []string{RolloutStarted, RolloutWaveStart, RolloutWavePassed, RolloutWaveFailed,
	RolloutHostFailed, RolloutPaused, RolloutResumed, RolloutPromoted, RolloutAborting, RolloutSucceeded,
	RolloutAborted, RolloutRolledBack, RolloutFailed}

// KindFleet is a fleet rollout message.
const KindFleet Kind = "rollout"

func init() {
	for _, k := range RolloutEvents {
		renderers[k] = func(e Envelope) (Message, error) {
			if e.Rollout == nil {
				return Message{}, fmt.Errorf("outbox payload of kind %q: missing its rollout", e.Kind)
			}
			n := *e.Rollout
			n.Event = e.Kind
			return rolloutMessage(n)
		}
	}
}

// rolloutMessage renders a rollout note of an event. Titles name the rollout id, so webhook messages
// (which cannot thread) are still attributable.
func rolloutMessage(n RolloutNote) (Message, error) {
	m := Message{Kind: KindFleet, Severity: SeverityInfo, Version: n.Version,
		Fields: []Field{{Key: "Rollout", Value: n.ID}, {Key: "Policy", Value: n.Policy}}}
	subject := fmt.Sprintf("Rollout %s of nutcracker %s", n.ID, n.Version)
	switch n.Event {
	case RolloutStarted:
		m.Title = subject + " started"
		var parts []string
		for _, w := range n.Waves {
			parts = append(parts, fmt.Sprintf("%s: %d host(s)", w.Name, w.Hosts))
		}
		m.Summary = "Waves, in order: " + strings.Join(parts, "; ") + "."
	case RolloutWaveStart:
		m.Title = fmt.Sprintf("%s: wave %s started", subject, n.Wave)
	case RolloutWavePassed:
		m.Title = fmt.Sprintf("%s: wave %s passed", subject, n.Wave)
	case RolloutWaveFailed:
		m.Title = fmt.Sprintf("%s: wave %s failed", subject, n.Wave)
		m.Severity = SeverityWarning
	case RolloutHostFailed:
		m.Title = fmt.Sprintf("%s: %s failed and was rolled back", subject, n.Host)
		m.Severity = SeverityWarning
		m.Fields = append(m.Fields, Field{Key: "Host", Value: n.Host})
	case RolloutPaused:
		m.Title = subject + " paused"
		m.Severity = SeverityWarning
	case RolloutResumed:
		m.Title = subject + " resumed"
	case RolloutPromoted:
		m.Title = fmt.Sprintf("%s promoted to wave %s", subject, n.Wave)
	case RolloutAborting:
		m.Title = subject + ": aborting, rolling back every changed host"
		m.Severity = SeverityWarning
	case RolloutSucceeded:
		m.Title = subject + " succeeded"
	case RolloutAborted:
		m.Title = subject + " aborted; every changed host is back on its previous version"
		m.Severity = SeverityWarning
	case RolloutRolledBack:
		m.Title = subject + " rolled back; every host is back on its previous version"
		m.Severity = SeverityWarning
	case RolloutFailed:
		m.Title = subject + " failed: a host could not be rolled back"
		m.Severity = SeverityCritical
	default:
		return Message{}, fmt.Errorf("rollout event %q has no renderer", n.Event)
	}
	if n.Wave != "" && n.Event != RolloutPromoted {
		m.Fields = append(m.Fields, Field{Key: "Wave", Value: n.Wave})
	}
	if n.Reason != "" {
		m.Summary = strings.TrimSpace(m.Summary + "\n" + n.Reason)
	}
	return m, nil
}
