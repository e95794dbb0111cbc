// Package waves moves a candidate nutcracker version over a fleet in ordered waves: it
// plans which host goes in which wave, checks every host before the first wave, drives
// the per-host deploys with bounded parallelism, watches each wave's stats during a soak,
// pauses or aborts on failure, and rolls back what it changed on abort. Every transition
// is one store transaction with its event and its outbox entry, so a daemon killed at any
// point continues where it was. The per-host work goes through Hosts, so the engine runs
// the same over real deploys and over a no-op step in benchmarks.
package waves

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/nutcracker"
)

var (
	// ErrRefused means a rollout did not start: a host failed its pre-checks and the policy
	// refuses, or nothing would change.
	ErrRefused = errors.New("rollout refused")
	// ErrConflict means a host already belongs to another unfinished rollout.
	ErrConflict = errors.New("host belongs to another rollout")
	// ErrNotFound means no rollout has the id.
	ErrNotFound = errors.New("no such rollout")
	// ErrState means the rollout is not in a state that allows the request.
	ErrState = errors.New("not allowed in this state")
	// ErrUsage means the request names an unknown policy or wave, or no version.
	ErrUsage = errors.New("bad rollout request")
)

// Rollout states.
const (
	StatePlanned    = "planned" // a plan, never stored
	StateRunning    = "running"
	StatePaused     = "paused"
	StateAborting   = "aborting" // rolling back every changed host
	StateSucceeded  = "succeeded"
	StateAborted    = "aborted"
	StateRolledBack = "rolled_back" // `rollback --rollout` of a finished rollout
	StateFailed     = "failed"      // a host could not be rolled back
)

// Wave states.
const (
	WavePending = "pending"
	WaveRunning = "running"
	WaveSoaking = "soaking"
	WavePassed  = "passed"
	WaveFailed  = "failed"
)

// Host states within a rollout.
const (
	HostPending        = "pending"
	HostSkipped        = "skipped"  // already on the candidate
	HostExcluded       = "excluded" // failed the pre-checks, policy exclude
	HostRunning        = "running"
	HostSucceeded      = "succeeded"
	HostFailed         = "failed" // the deploy failed; the host rolled itself back
	HostRollingBack    = "rolling_back"
	HostRolledBack     = "rolled_back"
	HostRollbackFailed = "rollback_failed"
)

// Terminal reports whether a rollout state is final.
func Terminal(state string) bool {
	switch state {
	case StateSucceeded, StateAborted, StateRolledBack, StateFailed:
		return true
	}
	return false
}

// Target is one inventory host as the planner sees it.
type Target struct {
	Name        string
	Environment string
	Labels      map[string]string
}

// Check is what the pre-checks found on one host, touching nothing.
type Check struct {
	Current  string   `json:"current"`  // version it runs, "" when unknown
	Artifact string   `json:"artifact"` // the verified build of the candidate, "" when none
	Lint     string   `json:"lint"`     // "ok", or the problems of its nutcracker.yml for the candidate
	Problems []string `json:"problems"` // what stops the host from taking part
}

// Hosts does the per-host work of a rollout. It is owned by this package; the daemon
// implements it with the real deploy, benchmarks with a no-op.
type Hosts interface {
	// Check inspects a host for a candidate without changing it.
	Check(ctx context.Context, host, version string) Check
	// Deploy moves a host to version: install, pre-flight, switch, restart, smoke test,
	// rolling itself back when the new build fails. since is when this rollout's attempt
	// on the host began: after a restart, an operation already run since then is reported,
	// not run again.
	Deploy(ctx context.Context, host, version string, since time.Time) error
	// Revert puts a host back on version (what it ran before the rollout).
	Revert(ctx context.Context, host, version string) error
	// Hook runs a command on a host.
	Hook(ctx context.Context, host string, argv []string) error
	// Stats reads a host's stats port.
	Stats(ctx context.Context, host string) (*nutcracker.Stats, error)
}

// Plan is what a rollout would do, host by host.
type Plan struct {
	Version   string     `json:"version"`
	Policy    string     `json:"policy"`
	State     string     `json:"state"`
	Waves     []PlanWave `json:"waves"`
	Unmatched []string   `json:"unmatched"`
}

// PlanWave is one wave of a plan.
type PlanWave struct {
	Name        string     `json:"name"`
	MaxParallel int        `json:"max_parallel"`
	MaxFailures int        `json:"max_failures"`
	SoakSeconds float64    `json:"soak_seconds"`
	Promote     bool       `json:"promote"`
	Hosts       []PlanHost `json:"hosts"`
}

// PlanHost is one host of a plan.
type PlanHost struct {
	Host        string `json:"host"`
	Environment string `json:"environment"`
	Action      string `json:"action"` // deploy, skip, exclude, refuse
	Check
}

// Plan actions.
const (
	ActionDeploy  = "deploy"
	ActionSkip    = "skip"
	ActionExclude = "exclude"
	ActionRefuse  = "refuse"
)

// Request asks for a rollout.
type Request struct {
	Version string `json:"version"`
	Policy  string `json:"policy,omitempty"` // "" = the default policy
	// Waves restricts the rollout to these waves of the policy ("" = all), e.g. staging
	// only during a patch window.
	Waves []string `json:"waves,omitempty"`
	// HoldAfter makes the rollout wait for a promote after these waves, whatever the
	// policy says.
	HoldAfter []string `json:"hold_after,omitempty"`
}

// assign puts each target in the first wave whose selector matches it.
func assign(p config.RolloutPolicy, targets []Target) (byWave [][]Target, unmatched []string) {
	byWave = make([][]Target, len(p.Waves))
	for _, t := range targets {
		placed := false
		for i, w := range p.Waves {
			if w.Selects(t.Name, t.Environment, t.Labels) {
				byWave[i] = append(byWave[i], t)
				placed = true
				break
			}
		}
		if !placed {
			unmatched = append(unmatched, t.Name)
		}
	}
	return byWave, unmatched
}

// checkConcurrency bounds the pre-checks run at once.
const checkConcurrency = 32

// plan checks every host of the selected waves; nothing is changed.
func (e *Engine) plan(ctx context.Context, req Request) (Plan, config.RolloutPolicy, error) {
	if req.Version == "" {
		return Plan{}, config.RolloutPolicy{}, fmt.Errorf("%w: a version is required", ErrUsage)
	}
	pol, ok := e.opts.Policies().Policy(req.Policy)
	if !ok {
		return Plan{}, pol, fmt.Errorf("%w: no rollout policy %q", ErrUsage, req.Policy)
	}
	for _, name := range append(slices.Clone(req.Waves), req.HoldAfter...) {
		if !slices.ContainsFunc(pol.Waves, func(w config.Wave) bool { return w.Name == name }) {
			return Plan{}, pol, fmt.Errorf("%w: policy %s has no wave %q", ErrUsage, pol.Name, name)
		}
	}
	byWave, unmatched := assign(pol, e.opts.Targets())
	p := Plan{Version: req.Version, Policy: pol.Name, State: StatePlanned, Unmatched: unmatched}
	if p.Unmatched == nil {
		p.Unmatched = []string{}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, checkConcurrency)
	for i, w := range pol.Waves {
		if len(req.Waves) > 0 && !slices.Contains(req.Waves, w.Name) {
			continue
		}
		n := len(byWave[i])
		pw := PlanWave{Name: w.Name, MaxParallel: max(1, w.MaxParallel.Of(n, true)), MaxFailures: w.MaxFailures.Of(n, false),
			SoakSeconds: w.Soak.Seconds(), Promote: w.Promote, Hosts: make([]PlanHost, n)}
		for j, t := range byWave[i] {
			pw.Hosts[j] = PlanHost{Host: t.Name, Environment: t.Environment}
			wg.Add(1)
			sem <- struct{}{}
			go func(ph *PlanHost) {
				defer func() { <-sem; wg.Done() }()
				ph.Check = e.opts.Hosts.Check(ctx, ph.Host, req.Version)
				if ph.Problems == nil {
					ph.Problems = []string{}
				}
				switch {
				case len(ph.Problems) > 0 && pol.PrecheckFailure == "exclude":
					ph.Action = ActionExclude
				case len(ph.Problems) > 0:
					ph.Action = ActionRefuse
				case ph.Current == req.Version:
					ph.Action = ActionSkip
				default:
					ph.Action = ActionDeploy
				}
			}(&pw.Hosts[j])
		}
		p.Waves = append(p.Waves, pw)
	}
	wg.Wait()
	return p, pol, ctx.Err()
}

// Plan shows what a rollout would do, touching nothing.
func (e *Engine) Plan(ctx context.Context, req Request) (Plan, error) {
	p, _, err := e.plan(ctx, req)
	return p, err
}
