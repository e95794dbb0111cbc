package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/internal/metrics"
	"github.com/patchctl/patchctl/nutcracker"
	"github.com/patchctl/patchctl/rollout"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/waves"
)

// RolloutArgs name a rollout ("" = the newest, for status).
type RolloutArgs struct {
	ID     string `json:"id"`
	Reason string `json:"reason,omitempty"`
}

// RolloutList is what `rollout list` shows.
type RolloutList struct {
	Rollouts []waves.View `json:"rollouts"`
}

func setupRollouts(_ context.Context, a *App) error {
	hosts := &fleetHosts{a: a}
	hostDur := metrics.NewHistogramVec("patchctl_rollout_host_duration_seconds",
		"Time one host took in a rollout (hooks, deploy, smoke test), by outcome.", metrics.ExponentialBuckets(0.5, 2, 12), "outcome")
	waveDur := metrics.NewHistogramVec("patchctl_rollout_wave_duration_seconds",
		"Time one wave took from its start to its verdict (soak included), by outcome.", metrics.ExponentialBuckets(1, 2, 14), "outcome")
	a.reg.MustRegister(hostDur, waveDur, rolloutCollector{a})
	a.rollouts = waves.New(a.store, waves.Options{
		Logger: a.log.With("component", "rollouts"), Now: a.now, Policies: func() config.Rollouts { return a.config().Rollouts }, Hosts: hosts,
		Targets: a.targets, Wake: a.wake,
		Observe: func(kind, state string, d time.Duration) {
			if kind == "wave" {
				waveDur.WithLabelValues(state).Observe(d.Seconds())
			} else {
				hostDur.WithLabelValues(state).Observe(d.Seconds())
			}
		},
	})
	a.addLoop(a.rollouts.Run)

	handle(a, "rollout.plan", func(ctx context.Context, req waves.Request) (any, error) {
		p, err := a.rollouts.Plan(ctx, req)
		return p, rolloutErr(err)
	})
	handle(a, "rollout.start", func(ctx context.Context, req waves.Request) (any, error) {
		v, err := a.rollouts.Start(ctx, req)
		return v, rolloutErr(err)
	})
	handle(a, "rollout.status", func(ctx context.Context, args RolloutArgs) (any, error) {
		if args.ID == "" {
			rs, err := a.rollouts.List(ctx)
			if err != nil {
				return nil, err
			}
			if len(rs) == 0 {
				return nil, &Error{Kind: KindUsage, Msg: "no rollout yet"}
			}
			args.ID = rs[len(rs)-1].ID
		}
		v, err := a.rollouts.Get(ctx, args.ID)
		return v, rolloutErr(err)
	})
	handle(a, "rollout.list", func(ctx context.Context, _ struct{}) (any, error) {
		rs, err := a.rollouts.List(ctx)
		return RolloutList{Rollouts: rs}, err
	})
	control := map[string]func(ctx context.Context, args RolloutArgs) (waves.View, error){
		"rollout.pause": func(ctx context.Context, x RolloutArgs) (waves.View, error) {
			return a.rollouts.Pause(ctx, x.ID, x.Reason)
		},
		"rollout.resume":  func(ctx context.Context, x RolloutArgs) (waves.View, error) { return a.rollouts.Resume(ctx, x.ID) },
		"rollout.promote": func(ctx context.Context, x RolloutArgs) (waves.View, error) { return a.rollouts.Promote(ctx, x.ID) },
		"rollout.abort": func(ctx context.Context, x RolloutArgs) (waves.View, error) {
			return a.rollouts.Abort(ctx, x.ID, x.Reason)
		},
		"rollout.rollback": func(ctx context.Context, x RolloutArgs) (waves.View, error) { return a.rollouts.RollBack(ctx, x.ID) },
	}
	for name, fn := range control {
		handle(a, name, func(ctx context.Context, args RolloutArgs) (any, error) {
			if args.ID == "" {
				return nil, &Error{Kind: KindUsage, Msg: "a rollout id is required"}
			}
			r, err := fn(ctx, args)
			return r, rolloutErr(err)
		})
	}
	return nil
}

// Rollouts is the fleet rollout engine, for in-process callers (the patch-window flow):
// Start with Request.Waves or HoldAfter, Promote, Pause with a reason, Resume, Abort.
func (a *App) Rollouts() *waves.Engine { return a.rollouts }

// rolloutErr gives engine errors the kind the CLI exits with.
func rolloutErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, waves.ErrUsage), errors.Is(err, waves.ErrNotFound):
		return &Error{Kind: KindUsage, Msg: err.Error()}
	case errors.Is(err, waves.ErrRefused), errors.Is(err, waves.ErrConflict), errors.Is(err, waves.ErrState):
		return &Error{Kind: KindFailed, Msg: err.Error()}
	}
	return err
}

// refuseLeased refuses a manual deploy or rollback of a host that an unfinished rollout
// holds: one operation per host at a time. A dry run changes nothing and is allowed.
func (a *App) refuseLeased(ctx context.Context, host string, dryRun bool) error {
	if dryRun {
		return nil
	}
	id, state, err := a.rollouts.Holder(ctx, host)
	if err != nil {
		return err
	}
	if id != "" {
		return &Error{Kind: KindFailed, Msg: fmt.Sprintf("host %s is in rollout %s (%s): pause or finish the rollout first, or abort it", host, id, state)}
	}
	return nil
}

// targets lists the inventory's hosts for the planner.
func (a *App) targets() []waves.Target {
	inv := a.inventory()
	if inv == nil {
		return nil
	}
	out := make([]waves.Target, len(inv.Hosts))
	for i, h := range inv.Hosts {
		out[i] = waves.Target{Name: h.Name, Environment: h.Environment, Labels: h.Labels}
	}
	return out
}

// fleetHosts runs a rollout's per-host work with the deploy and rollback `patchctl deploy`
// uses, so a rollout's host goes through exactly the same steps and recovery.
type fleetHosts struct {
	a *App
	// resolve serialises artifact resolution: every host of a rollout asks for the same build.
	resolve sync.Mutex
}

var _ waves.Hosts = (*fleetHosts)(nil)

// busyWait bounds how long a host step waits for another operation on the same host
// (the start-up recovery of an interrupted deploy) to finish.
const busyWait = 3 * time.Minute

// retryBusy runs fn until the host is free.
func retryBusy[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	deadline := time.Now().Add(busyWait)
	for {
		v, err := fn()
		if !errors.Is(err, rollout.ErrBusy) || time.Now().After(deadline) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (f *fleetHosts) Check(ctx context.Context, host, version string) waves.Check {
	c := waves.Check{Problems: []string{}}
	problem := func(format string, args ...any) { c.Problems = append(c.Problems, fmt.Sprintf(format, args...)) }
	h, err := f.a.inventoryHost(host)
	if err != nil {
		problem("%v", err)
		return c
	}
	sctx, cancel := context.WithTimeout(ctx, f.a.config().Inventory.StatsTimeout)
	st, err := nutcracker.FetchStats(sctx, h.Stats)
	cancel()
	if err != nil {
		problem("stats port: %v", err)
	} else {
		c.Current = st.Version
	}
	f.resolve.Lock()
	art, err := f.a.resolveArtifact(ctx, f.a.artifacts, version)
	f.resolve.Unlock()
	if err != nil {
		problem("artifact: %v", err)
	} else {
		c.Artifact = art.Path
	}
	spec, closeT, err := f.a.hostSpec(ctx, host)
	if err != nil {
		problem("%v", err)
		return c
	}
	defer closeT()
	data, err := spec.Transport.ReadFile(ctx, spec.Config)
	if err != nil {
		problem("read %s: %v", spec.Config, err)
		return c
	}
	if err := (rollout.Lint{}).Lint(spec.Config, data, version); err != nil {
		c.Lint = err.Error()
		problem("lint %s for %s: %v", spec.Config, version, err)
	} else {
		c.Lint = "ok"
	}
	return c
}

func (f *fleetHosts) Deploy(ctx context.Context, host, version string, since time.Time) error {
	spec, closeT, err := f.a.hostSpec(ctx, host)
	if err != nil {
		return err
	}
	defer closeT()
	r := f.a.deployer
	if _, err := retryBusy(ctx, func() (rollout.Result, error) {
		res, _, err := r.Recover(ctx, spec)
		return res, err
	}); err != nil {
		return fmt.Errorf("recover interrupted operation: %w", err)
	}
	// A deploy this rollout already ran on the host (the daemon died before recording
	// its outcome) is reported, never run twice; one the daemon's death undid before
	// anything judged the build runs again.
	ops, err := r.History(ctx, host)
	if err != nil {
		return err
	}
	for i := len(ops) - 1; i >= 0; i-- {
		op := ops[i]
		if op.Kind != rollout.KindDeploy || op.ToVersion != version || op.Started.Before(since) {
			continue
		}
		switch {
		case op.State == rollout.OpSucceeded:
			return nil
		case op.Interrupted:
			f.a.log.Info("deploying again: the daemon stopped during the last deploy", "host", host, "op", op.ID, "version", version)
		case op.State == rollout.OpRolledBack || op.State == rollout.OpFailed:
			return fmt.Errorf("deploy %s: %s: %s", op.ID, op.State, op.Error)
		}
		break
	}
	f.resolve.Lock()
	art, err := f.a.resolveArtifact(ctx, f.a.artifacts, version)
	f.resolve.Unlock()
	if err != nil {
		return err
	}
	if err := f.a.store.Update(ctx, func(tx *store.Tx) error {
		return tx.PutHost(HostExpectedVersion, host, version)
	}); err != nil {
		return err
	}
	_, err = retryBusy(ctx, func() (rollout.Result, error) {
		return r.Deploy(ctx, spec, rollout.Artifact{Path: art.Path, Version: art.Version}, rollout.DeployOptions{})
	})
	return err
}

func (f *fleetHosts) Revert(ctx context.Context, host, version string) error {
	spec, closeT, err := f.a.hostSpec(ctx, host)
	if err != nil {
		return err
	}
	defer closeT()
	if err := f.a.store.Update(ctx, func(tx *store.Tx) error {
		return tx.PutHost(HostExpectedVersion, host, version)
	}); err != nil {
		return err
	}
	_, err = retryBusy(ctx, func() (rollout.Result, error) { return f.a.deployer.Rollback(ctx, spec, version) })
	return err
}

func (f *fleetHosts) Hook(ctx context.Context, host string, argv []string) error {
	spec, closeT, err := f.a.hostSpec(ctx, host)
	if err != nil {
		return err
	}
	defer closeT()
	res, err := spec.Transport.Run(ctx, argv, nil)
	if err != nil {
		if out := strings.TrimSpace(string(res.Stderr)); out != "" {
			return fmt.Errorf("%w: %s", err, out)
		}
		return err
	}
	return nil
}

func (f *fleetHosts) Stats(ctx context.Context, host string) (*nutcracker.Stats, error) {
	h, err := f.a.inventoryHost(host)
	if err != nil {
		return nil, err
	}
	return nutcracker.FetchStats(ctx, h.Stats)
}

// rolloutCollector reports rollouts by state and the hosts of unfinished rollouts by
// their state, read from the store at scrape time.
type rolloutCollector struct{ a *App }

var _ metrics.Collector = rolloutCollector{}

func (c rolloutCollector) Collect() []metrics.Family {
	byState := map[string]int{}
	hostStates := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.a.store.View(ctx, func(tx *store.Tx) error {
		rs, err := tx.Rollouts()
		if err != nil {
			return err
		}
		for _, r := range rs {
			byState[r.State]++
			if waves.Terminal(r.State) {
				continue
			}
			hosts, err := tx.RolloutHosts(r.ID)
			if err != nil {
				return err
			}
			for _, h := range hosts {
				hostStates[h.State]++
			}
		}
		return nil
	})
	if err != nil {
		c.a.log.Warn("rollout metrics", "err", err)
		return nil
	}
	rollouts := metrics.Family{Name: "patchctl_rollouts", Help: "Rollouts by state.", Type: metrics.TypeGauge}
	for _, s := range []string{waves.StateRunning, waves.StatePaused, waves.StateAborting, waves.StateSucceeded,
		waves.StateAborted, waves.StateRolledBack, waves.StateFailed} {
		rollouts.Samples = append(rollouts.Samples, stateSample(s, byState[s]))
	}
	hosts := metrics.Family{Name: "patchctl_rollout_hosts", Help: "Hosts of unfinished rollouts by their state in the rollout.", Type: metrics.TypeGauge}
	for _, s := range slices.Sorted(maps.Keys(hostStates)) {
		hosts.Samples = append(hosts.Samples, stateSample(s, hostStates[s]))
	}
	slices.SortFunc(rollouts.Samples, func(a, b metrics.Sample) int { return strings.Compare(a.Labels[0].Value, b.Labels[0].Value) })
	return []metrics.Family{rollouts, hosts}
}

func stateSample(state string, n int) metrics.Sample {
	return metrics.Sample{Labels: []metrics.Label{{Name: "state", Value: state}}, Value: float64(n)}
}
