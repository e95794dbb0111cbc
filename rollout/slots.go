package rollout

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/patchctl/patchctl/store"
)

// SlotState is where a slot is in its life.
type SlotState string

// Slot states.
const (
	SlotInstalling SlotState = "installing" // uploaded, not yet proved by a smoke test
	SlotGood       SlotState = "good"       // passed a smoke test
	SlotFailed     SlotState = "failed"     // failed to start or a smoke test; kept for forensics
	SlotRetired    SlotState = "retired"    // removed from the host (pruned, or refused at pre-flight)
)

// SlotChange is one entry of a slot's history.
type SlotChange struct {
	Time  time.Time `json:"time"`
	State SlotState `json:"state"`
	Op    string    `json:"op,omitempty"`
	Note  string    `json:"note,omitempty"`
}

// Slot is one installed build: <root>/slots/<Name>/nutcracker.
type Slot struct {
	Name       string       `json:"name"` // <version>-<sha256[:12]>
	Version    string       `json:"version"`
	SHA256     string       `json:"sha256"`
	State      SlotState    `json:"state"`
	Installed  time.Time    `json:"installed"`
	LastActive time.Time    `json:"last_active,omitzero"` // last time it became current and passed
	History    []SlotChange `json:"history"`
}

// HostState is the slot table of one host.
type HostState struct {
	Host    string `json:"host"`
	Current string `json:"current,omitempty"` // slot name the current symlink points at
	Slots   []Slot `json:"slots"`
	// Adopted is a proxy started outside patchctl and adopted as the current slot; the
	// next restart stops it.
	Adopted *Adopted    `json:"adopted,omitempty"`
	History []Operation `json:"history,omitempty"` // finished operations, newest last
}

// Adopted is a running nutcracker that patchctl did not start.
type Adopted struct {
	PID int    `json:"pid"`
	Exe string `json:"exe"` // its executable, as /proc/PID/exe names it
}

const (
	kindSlots     = "slots"
	kindOperation = "operation"
	// historyLimit bounds the finished operations kept per host; the event log keeps all.
	historyLimit = 100
)

func slotName(version, sha string) string { return version + "-" + sha[:12] }

func (h *HostState) slot(name string) *Slot {
	for i := range h.Slots {
		if h.Slots[i].Name == name {
			return &h.Slots[i]
		}
	}
	return nil
}

// setState moves a slot to a state and records why.
func (h *HostState) setState(name string, s SlotState, now time.Time, op, note string) {
	sl := h.slot(name)
	if sl == nil {
		return
	}
	sl.State = s
	if s == SlotGood && name == h.Current {
		sl.LastActive = now
	}
	sl.History = append(sl.History, SlotChange{Time: now, State: s, Op: op, Note: note})
}

// previousGood is the most recently active good slot other than the current one.
func (h *HostState) previousGood() *Slot {
	var best *Slot
	for i := range h.Slots {
		s := &h.Slots[i]
		if s.Name == h.Current || s.State != SlotGood {
			continue
		}
		if best == nil || s.LastActive.After(best.LastActive) {
			best = s
		}
	}
	return best
}

// prunable returns the slots to remove so that at most keep remain on the host. The
// current slot, the previous good one and the newest failed one always stay.
func (h *HostState) prunable(keep int) []string {
	protected := map[string]bool{h.Current: true}
	if p := h.previousGood(); p != nil {
		protected[p.Name] = true
	}
	var live []*Slot
	var newestFailed *Slot
	for i := range h.Slots {
		s := &h.Slots[i]
		if s.State == SlotRetired {
			continue
		}
		live = append(live, s)
		if s.State == SlotFailed && (newestFailed == nil || s.Installed.After(newestFailed.Installed)) {
			newestFailed = s
		}
	}
	if newestFailed != nil {
		protected[newestFailed.Name] = true
	}
	// Oldest first: they go first.
	slices.SortStableFunc(live, func(a, b *Slot) int { return a.Installed.Compare(b.Installed) })
	var out []string
	for _, s := range live {
		if len(live)-len(out) <= keep {
			break
		}
		if !protected[s.Name] {
			out = append(out, s.Name)
		}
	}
	return out
}

func loadState(tx *store.Tx, host string) (HostState, error) {
	var h HostState
	if _, err := tx.Host(kindSlots, host, &h); err != nil {
		return h, fmt.Errorf("read slot table of %s: %w", host, err)
	}
	h.Host = host
	return h, nil
}

func putState(tx *store.Tx, h HostState) error {
	if n := len(h.History); n > historyLimit {
		h.History = h.History[n-historyLimit:]
	}
	return tx.PutHost(kindSlots, h.Host, h)
}

// Slots returns the slot table of a host.
func (r *Rollout) Slots(ctx context.Context, host string) (HostState, error) {
	var h HostState
	err := r.st.View(ctx, func(tx *store.Tx) (err error) {
		h, err = loadState(tx, host)
		return err
	})
	return h, err
}

// History returns the finished operations of a host, oldest first, followed by the
// unfinished one, if any.
func (r *Rollout) History(ctx context.Context, host string) ([]Operation, error) {
	var ops []Operation
	err := r.st.View(ctx, func(tx *store.Tx) error {
		h, err := loadState(tx, host)
		if err != nil {
			return err
		}
		ops = h.History
		op, ok, err := loadOp(tx, host)
		if err != nil {
			return err
		}
		if ok && op.State == OpRunning {
			ops = append(ops, op)
		}
		return nil
	})
	return ops, err
}
