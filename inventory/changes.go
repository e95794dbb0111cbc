package inventory

import (
	"slices"
	"time"

	"github.com/patchctl/patchctl/advisory"
)

// State is what change detection remembers about a host between two passes; the daemon
// stores it and hands it back to Track.
type State struct {
	Version      string    `json:"version,omitempty"` // last known version
	Advisories   []string  `json:"advisories,omitempty"`
	Answering    bool      `json:"answering"`
	LastAnswered time.Time `json:"last_answered,omitzero"`
	// Changes counts the events reported for the host so far: it tells a change that
	// happens again apart from a repeat of the same one.
	Changes uint64 `json:"changes,omitempty"`
}

// EventKind names a change worth one alert.
type EventKind string

// Changes Track reports.
const (
	BecameExposed    EventKind = "exposed"           // advisories now affect the host that did not before
	VersionChanged   EventKind = "version_changed"   // the version changed, and no rollout expected it
	StoppedAnswering EventKind = "stopped_answering" // the stats port stopped answering
	CameBack         EventKind = "came_back"         // the stats port answers again
)

// Event is one change of one host.
type Event struct {
	Kind        EventKind         `json:"kind"`
	Host        string            `json:"host"`
	Environment string            `json:"environment"`
	At          time.Time         `json:"at"`
	From        string            `json:"from,omitempty"`       // VersionChanged: previous version
	To          string            `json:"to,omitempty"`         // VersionChanged: new version
	Advisories  []string          `json:"advisories,omitempty"` // BecameExposed: the new ones
	Severity    advisory.Severity `json:"severity,omitzero"`    // BecameExposed: highest of them
	Error       string            `json:"error,omitempty"`      // StoppedAnswering: why
}

// Track compares a pass with the state of the previous one and returns the next state and
// the changes, one event per change rather than per pass: a host that stays down, exposed
// or on an unexpected version yields nothing more. expected maps a host to the version a
// rollout is installing there; reaching it is not an unexpected change.
//
// A host missing from prev (new to the inventory, or the daemon's first pass) starts from
// "answering, no version, no advisories", so it alerts once if it is down or exposed. A
// pass that cannot tell the version keeps the last known one and its advisories.
func Track(prev map[string]State, cur []Exposure, expected map[string]string) (map[string]State, []Event) {
	next := make(map[string]State, len(cur))
	var events []Event
	for _, e := range cur {
		p, ok := prev[e.Host]
		if !ok {
			p = State{Answering: true}
		}
		s := State{Version: p.Version, Advisories: p.Advisories, Answering: e.Answering, LastAnswered: p.LastAnswered, Changes: p.Changes}
		before := len(events)
		ev := Event{Host: e.Host, Environment: e.Environment, At: e.At}
		if e.Answering {
			s.LastAnswered = e.At
		}
		switch {
		case p.Answering && !e.Answering:
			ev := ev
			ev.Kind, ev.Error = StoppedAnswering, e.Error
			events = append(events, ev)
		case !p.Answering && e.Answering:
			ev := ev
			ev.Kind = CameBack
			events = append(events, ev)
		}
		if e.Version != "" {
			if p.Version != "" && e.Version != p.Version && expected[e.Host] != e.Version {
				ev := ev
				ev.Kind, ev.From, ev.To = VersionChanged, p.Version, e.Version
				events = append(events, ev)
			}
			s.Version = e.Version
			s.Advisories = nil
			var fresh []string
			var sev advisory.Severity
			for _, f := range e.Findings {
				s.Advisories = append(s.Advisories, f.ID)
				if !slices.Contains(p.Advisories, f.ID) {
					fresh = append(fresh, f.ID)
					sev = max(sev, f.Severity)
				}
			}
			if len(fresh) > 0 {
				ev := ev
				ev.Kind, ev.Advisories, ev.Severity = BecameExposed, fresh, sev
				events = append(events, ev)
			}
		}
		s.Changes += uint64(len(events) - before)
		next[e.Host] = s
	}
	return next, events
}
