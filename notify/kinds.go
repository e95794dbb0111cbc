package notify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/patchctl/patchctl/store"
)

// Outbox kinds: everything a producer may put in the outbox. Producers enqueue only through
// Enqueue, which refuses a kind missing from renderers, so no alert can be queued that the
// dispatcher would later abandon with "nothing to render".
const (
	OutboxReleaseNew    = "release.new"
	OutboxAdvisoryNew   = "advisory.new"
	OutboxTrackingStart = "tracking.start"

	OutboxInventoryExposed        = "inventory.exposed"
	OutboxInventoryVersionChanged = "inventory.version_changed"
	OutboxInventoryStopped        = "inventory.stopped_answering"
	OutboxInventoryCameBack       = "inventory.came_back"

	OutboxDeployFailed         = "deploy.failed"          // the new build failed and nothing ran before
	OutboxDeployRolledBack     = "deploy.rolled_back"     // the new build failed; the previous one runs again
	OutboxDeployRollbackFailed = "deploy.rollback_failed" // and the way back failed too
	OutboxRollbackFailed       = "rollback.failed"        // an explicit rollback failed

	OutboxWindowReminder = "window.reminder"  // a patch window with work to do opens soon
	OutboxWindowStart    = "window.start"     // a patch window with work to do opened
	OutboxWindowEnd      = "window.end"       // what a patch window did
	OutboxPatchStarted   = "patching.started" // the scheduler started a rollout, and why
	OutboxPatchBad       = "patching.bad"     // a candidate's rollout failed: the version is marked bad
)

// renderers turn each outbox kind into its message. A kind is enqueueable exactly when it
// has a renderer here.
var renderers = map[string]func(Envelope) (Message, error){
	OutboxReleaseNew:    func(e Envelope) (Message, error) { return need(e, e.Release, releaseMessage) },
	OutboxAdvisoryNew:   func(e Envelope) (Message, error) { return need(e, e.Advisory, advisoryMessage) },
	OutboxTrackingStart: func(e Envelope) (Message, error) { return trackingMessage(e), nil },

	OutboxInventoryExposed:        readyMessage,
	OutboxInventoryVersionChanged: readyMessage,
	OutboxInventoryStopped:        readyMessage,
	OutboxInventoryCameBack:       readyMessage,

	OutboxDeployFailed:         operationMessage,
	OutboxDeployRolledBack:     operationMessage,
	OutboxDeployRollbackFailed: operationMessage,
	OutboxRollbackFailed:       operationMessage,

	OutboxWindowReminder: readyMessage,
	OutboxWindowStart:    readyMessage,
	OutboxWindowEnd:      readyMessage,
	OutboxPatchStarted:   readyMessage,
	OutboxPatchBad:       readyMessage,
}

// OutboxKinds lists every kind Enqueue accepts, sorted.
func OutboxKinds() []string {
	kinds := make([]string, 0, len(renderers))
	for k := range renderers {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// ErrUnknownKind means a producer tried to enqueue a kind that has no renderer.
var ErrUnknownKind = fmt.Errorf("outbox kind has no renderer")

// Enqueue puts e in the outbox under its idempotency key, in the caller's transaction. It
// refuses a kind with no renderer and an envelope its renderer cannot render, so a
// producer's own tests catch what would otherwise be an alert abandoned at send time.
func Enqueue(tx *store.Tx, key string, e Envelope) (bool, error) {
	if _, ok := renderers[e.Kind]; !ok {
		return false, fmt.Errorf("enqueue %s: %w: %q", key, ErrUnknownKind, e.Kind)
	}
	if _, err := renderEnvelope(e); err != nil {
		return false, fmt.Errorf("enqueue %s: %w", key, err)
	}
	payload, err := e.Encode()
	if err != nil {
		return false, fmt.Errorf("enqueue %s: %w", key, err)
	}
	return tx.Enqueue(key, payload)
}

func need[T any](e Envelope, v *T, fn func(T) Message) (Message, error) {
	if v == nil {
		var zero T
		return Message{}, fmt.Errorf("outbox payload of kind %q: missing its %T", e.Kind, zero)
	}
	return fn(*v), nil
}

func readyMessage(e Envelope) (Message, error) {
	if e.Message == nil {
		return Message{}, fmt.Errorf("outbox payload of kind %q: missing its message", e.Kind)
	}
	return *e.Message, nil
}

// Operation is the outcome of a deploy or rollback of one host, as queued by the rollout.
// Its fields are flat in the payload, as they always were.
type Operation struct {
	Host        string `json:"host"`
	Op          string `json:"op"`        // operation id
	Operation   string `json:"operation"` // deploy or rollback
	From        string `json:"from,omitempty"`
	FromVersion string `json:"from_version,omitempty"`
	To          string `json:"to,omitempty"`
	ToVersion   string `json:"to_version,omitempty"`
	// Step is the step that failed; Error is why.
	Step  string `json:"step,omitempty"`
	Error string `json:"error,omitempty"`
	// RollbackStep and RollbackError say where and why the way back failed too.
	RollbackStep  string `json:"rollback_step,omitempty"`
	RollbackError string `json:"rollback_error,omitempty"`
	// By is who asked, as the daemon learnt it from the socket ("uid 1000 (alice)").
	By string `json:"by,omitempty"`
}

func operationMessage(e Envelope) (Message, error) {
	o := e.Operation
	if o == nil || o.Host == "" {
		return Message{}, fmt.Errorf("outbox payload of kind %q: missing the host", e.Kind)
	}
	to := orNothing(o.ToVersion)
	from := orNothing(o.FromVersion)
	// Version stays empty: the To field says it, and Slack shows at most ten fields.
	m := Message{Kind: KindDeploy, Severity: SeverityCritical}
	switch e.Kind {
	case OutboxDeployRolledBack:
		m.Kind, m.Severity = KindRollback, SeverityWarning
		m.Title = fmt.Sprintf("%s: deploy of %s rolled back to %s", o.Host, to, from)
		m.Summary = fmt.Sprintf("nutcracker %s failed at %s: %s. The host runs %s again.", to, o.Step, o.Error, from)
	case OutboxDeployRollbackFailed:
		m.Title = fmt.Sprintf("%s: deploy of %s failed and the rollback to %s failed too", o.Host, to, from)
		m.Summary = fmt.Sprintf("nutcracker %s failed at %s: %s. Going back to %s failed at %s: %s. Check the host now.",
			to, o.Step, o.Error, from, o.RollbackStep, o.RollbackError)
	case OutboxRollbackFailed:
		m.Kind = KindRollback
		m.Title = fmt.Sprintf("%s: rollback from %s to %s failed", o.Host, from, to)
		m.Summary = fmt.Sprintf("The rollback failed at %s: %s. Check the host now.", o.Step, o.Error)
	default:
		m.Title = fmt.Sprintf("%s: deploy of %s failed", o.Host, to)
		m.Summary = fmt.Sprintf("nutcracker %s failed at %s: %s. Nothing ran before it, so there was nothing to roll back to.", to, o.Step, o.Error)
	}
	m.Fields = []Field{{Key: "Host", Value: o.Host}, {Key: "From", Value: from}, {Key: "To", Value: to},
		{Key: "Failed step", Value: o.Step}, {Key: "Cause", Value: o.Error}}
	if o.RollbackError != "" {
		m.Fields = append(m.Fields, Field{Key: "Rollback failed", Value: "at " + o.RollbackStep + ": " + o.RollbackError})
	}
	m.Fields = append(m.Fields, Field{Key: "Operation", Value: strings.TrimSpace(o.Operation + " " + o.Op)})
	if o.By != "" {
		m.Fields = append(m.Fields, Field{Key: "Requested by", Value: o.By})
	}
	return m, nil
}

func orNothing(v string) string {
	if v == "" {
		return "(nothing)"
	}
	return v
}
