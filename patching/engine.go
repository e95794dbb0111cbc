// Package patching is the automatic flow: it picks the candidate release of each patching
// policy, and in the policy's windows drives the fleet rollout engine: staging first, then
// production (after an approval when the policy wants one), pausing a rollout when its window
// closes and resuming it in the next window of the same kind. Time comes from an injected
// Clock, so tests move time instead of sleeping; every decision is durable in the store, so
// a daemon killed mid-window continues where it was without doing anything twice.
package patching

import (
	"context"
	"sync"
	"time"
)

// Clock is the scheduler's time source.
type Clock interface {
	Now() time.Time
}

// RealClock is the wall clock the daemon uses.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// ClockFunc makes a function a Clock (the daemon's injected now, a demo's moved clock).
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }

// JumpClock runs like the real clock from wherever it was last set: the demo jumps to a
// window's opening, and deploys and soaks then take their real seconds. Before the first
// Set it is the real clock.
type JumpClock struct {
	mu    sync.Mutex
	base  time.Time
	setAt time.Time
}

// Now is the time set plus the real time elapsed since.
func (c *JumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.base.IsZero() {
		return time.Now()
	}
	return c.base.Add(time.Since(c.setAt))
}

// Set moves the clock to t.
func (c *JumpClock) Set(t time.Time) {
	c.mu.Lock()
	c.base, c.setAt = t, time.Now()
	c.mu.Unlock()
}

var (
	_ Clock = RealClock{}
	_ Clock = ClockFunc(nil)
	_ Clock = (*JumpClock)(nil)
)

// Rollout states as the engine reports them.
const (
	StatePlanned    = "planned"
	StateRunning    = "running"
	StatePaused     = "paused"
	StateSucceeded  = "succeeded"
	StateFailed     = "failed"
	StateAborted    = "aborted"
	StateRolledBack = "rolled_back"
)

// ReasonWindowClosed is why the scheduler pauses a rollout at the end of its window (or at
// its cutoff): the next window of the same kind resumes it.
const ReasonWindowClosed = "window closed"

// Rollout is what the scheduler needs to know about a rollout.
type Rollout struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
	// StagingDone: the staging waves passed (smoke tests and soak); the production waves
	// are next or under way.
	StagingDone bool `json:"staging_done"`
	// AwaitingPromote: paused until someone (or the scheduler) lets the next wave start.
	AwaitingPromote bool `json:"awaiting_promote"`
	// Hosts and Done count the rollout's hosts and those finished on the candidate.
	Hosts int `json:"hosts"`
	Done  int `json:"done"`
}

// Finished reports whether the rollout reached an end state.
func (r Rollout) Finished() bool {
	switch r.State {
	case StateSucceeded, StateFailed, StateAborted, StateRolledBack:
		return true
	}
	return false
}

// StartRequest asks the engine for a rollout that holds after its staging waves.
type StartRequest struct {
	Version string
	// RolloutPolicy is the fleet policy whose waves are used ("" = the default one).
	RolloutPolicy string
	// StagingWaves are the waves run in staging windows; the rollout waits after them.
	StagingWaves []string
	// Reason says why it starts (events and messages).
	Reason string
}

// Engine is what the scheduler needs from the fleet rollout engine.
type Engine interface {
	Start(ctx context.Context, req StartRequest) (Rollout, error)
	Pause(ctx context.Context, id, reason string) (Rollout, error)
	Resume(ctx context.Context, id string) (Rollout, error)
	// Promote lets a rollout that finished its staging waves go on to production.
	Promote(ctx context.Context, id string) (Rollout, error)
	Get(ctx context.Context, id string) (Rollout, error)
	// Find returns an unfinished rollout of version under the rollout policy, ok false
	// when there is none (a daemon killed while starting one adopts it).
	Find(ctx context.Context, version, rolloutPolicy string) (r Rollout, ok bool, err error)
}
