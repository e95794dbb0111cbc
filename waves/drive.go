package waves

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/store"
)

// currentWave is the index of the first wave that has not passed.
func currentWave(r store.Rollout) int {
	for i, w := range r.Waves {
		if w.State != WavePassed {
			return i
		}
	}
	return len(r.Waves)
}

// failures counts the failed hosts of a wave.
func failures(w store.RolloutWave, hosts map[string]store.RolloutHost) int {
	n := 0
	for _, h := range w.Hosts {
		if hosts[h].State == HostFailed {
			n++
		}
	}
	return n
}

func policyOf(r store.Rollout) (config.RolloutPolicy, error) {
	var p config.RolloutPolicy
	if err := json.Unmarshal(r.Settings, &p); err != nil {
		return p, fmt.Errorf("rollout %s: policy: %w", r.ID, err)
	}
	return p, nil
}

// drive does the next piece of a rollout's work; again reports that there is more.
func (e *Engine) drive(ctx context.Context, id string) (again bool, err error) {
	v, err := e.load(ctx, id)
	if err != nil {
		return false, err
	}
	pol, err := policyOf(v.Rollout)
	if err != nil {
		return false, err
	}
	switch v.State {
	case StateAborting:
		return false, e.revertAll(ctx, v, pol)
	case StateRunning:
	default:
		return false, nil
	}
	i := currentWave(v.Rollout)
	if i == len(v.Waves) {
		_, err := e.transition(ctx, id, func(tx *store.Tx, r *store.Rollout) (string, string, string, string, error) {
			r.State, r.Finished = StateSucceeded, e.opts.Now()
			return notify.RolloutSucceeded, "", "", fmt.Sprintf("every wave passed; %s is on %s", waveSizes(*r), r.Version), releaseLeases(tx, *r)
		})
		return false, err
	}
	w := v.Waves[i]
	switch w.State {
	case WavePending, WaveRunning:
		if w.Baseline == nil {
			if err := e.startWave(ctx, v, i); err != nil {
				return false, err
			}
			return true, nil
		}
		return e.runWave(ctx, v, i, pol)
	case WaveSoaking:
		return e.soak(ctx, v, i, pol)
	}
	return false, fmt.Errorf("rollout %s: wave %s in unexpected state %s", id, w.Name, w.State)
}

// startWave takes the stats snapshot the wave's soak gate compares against, then marks
// the wave running.
func (e *Engine) startWave(ctx context.Context, v snapshot, i int) error {
	base := e.snapshot(ctx, activeHosts(v.Waves[i], v.Hosts))
	if ctx.Err() != nil {
		return nil
	}
	_, err := e.transition(ctx, v.ID, func(tx *store.Tx, r *store.Rollout) (string, string, string, string, error) {
		w := &r.Waves[i]
		w.Baseline = base
		if w.State == WaveRunning { // resumed after a failure: a new baseline, no new start
			return "rollout.wave.rebased", w.Name, "", "stats snapshot retaken for wave " + w.Name, nil
		}
		w.State, w.Started = WaveRunning, e.opts.Now()
		return notify.RolloutWaveStart, w.Name, "", fmt.Sprintf("wave %s started: %d host(s), %d at a time", w.Name, len(w.Hosts), w.MaxParallel), nil
	})
	return err
}

// activeHosts are the hosts of a wave the gate watches: every one not excluded.
func activeHosts(w store.RolloutWave, hosts map[string]store.RolloutHost) []string {
	var out []string
	for _, h := range w.Hosts {
		if hosts[h].State != HostExcluded {
			out = append(out, h)
		}
	}
	return out
}

func hostDone(state string) bool {
	switch state {
	case HostSucceeded, HostFailed, HostSkipped, HostExcluded:
		return true
	}
	return false
}

// runWave deploys the wave's remaining hosts, MaxParallel at a time, until they are done,
// the failure budget is spent, or the rollout is paused or aborted.
func (e *Engine) runWave(ctx context.Context, v snapshot, i int, pol config.RolloutPolicy) (bool, error) {
	w := v.Waves[i]
	var todo []store.RolloutHost
	// Hosts interrupted by a restart go first: they may be half-way through a switch.
	for _, h := range w.Hosts {
		if v.Hosts[h].State == HostRunning {
			todo = append(todo, v.Hosts[h])
		}
	}
	for _, h := range w.Hosts {
		if v.Hosts[h].State == HostPending {
			todo = append(todo, v.Hosts[h])
		}
	}
	sem := make(chan struct{}, max(1, w.MaxParallel))
	var wg sync.WaitGroup
	var launchErr error
	var mu sync.Mutex
	failed := failures(w, v.Hosts)
	for _, h := range todo {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		// Only the rollout record is read per launch: pause and abort are seen at once,
		// and a wave of thousands of hosts is not re-read for each.
		cur, err := e.rollout(ctx, v.ID)
		if err != nil {
			launchErr = err
			<-sem
			break
		}
		mu.Lock()
		over := failed > cur.Waves[i].MaxFailures
		mu.Unlock()
		if cur.State != StateRunning || over {
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			state, err := e.runHost(ctx, cur, pol, h)
			if err != nil && ctx.Err() == nil {
				e.log.Error("record host outcome", "rollout", v.ID, "host", h.Host, "err", err)
			}
			if state == HostFailed {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil || launchErr != nil {
		return false, launchErr
	}
	cur, err := e.load(ctx, v.ID)
	if err != nil {
		return false, err
	}
	cw := cur.Waves[i]
	if f := failures(cw, cur.Hosts); f > cw.MaxFailures {
		return true, e.failWave(ctx, v.ID, i, pol, fmt.Sprintf("%d host(s) failed, more than max_failures %d", f, cw.MaxFailures))
	}
	if cur.State != StateRunning {
		return cur.State == StateAborting, nil
	}
	for _, h := range cw.Hosts {
		if !hostDone(cur.Hosts[h].State) {
			return true, nil // a host left over from a launch loop that stopped early
		}
	}
	_, err = e.transition(ctx, v.ID, func(tx *store.Tx, r *store.Rollout) (string, string, string, string, error) {
		w := &r.Waves[i]
		w.State, w.SoakUntil = WaveSoaking, e.opts.Now().Add(w.Soak)
		return "rollout.wave.soaking", w.Name, "", fmt.Sprintf("wave %s deployed; soaking for %s", w.Name, w.Soak), nil
	})
	return true, err
}

// runHost runs one host's hooks and deploy and records the outcome. A host found running
// (the daemon died during its deploy) is finished: Deploy reports an operation it
// already ran instead of running another.
func (e *Engine) runHost(ctx context.Context, r store.Rollout, pol config.RolloutPolicy, h store.RolloutHost) (string, error) {
	if h.State != HostRunning {
		h.State, h.Started = HostRunning, e.opts.Now()
		if err := e.putHost(ctx, r, h, "rollout.host.running", fmt.Sprintf("%s: deploying %s", h.Host, r.Version)); err != nil {
			return "", err
		}
	}
	err := e.deployHost(ctx, r, pol, h)
	if ctx.Err() != nil {
		return "", nil // the daemon is stopping; the host is finished after the restart
	}
	h.Finished = e.opts.Now()
	event, msg := "rollout.host.succeeded", fmt.Sprintf("%s: on %s", h.Host, r.Version)
	h.State = HostSucceeded
	if err != nil {
		h.State, h.Error = HostFailed, err.Error()
		event, msg = notify.RolloutHostFailed, fmt.Sprintf("%s: %v", h.Host, err)
	}
	if e.opts.Observe != nil {
		e.opts.Observe("host", h.State, h.Finished.Sub(h.Started))
	}
	return h.State, e.putHost(ctx, r, h, event, msg)
}

// deployHost runs the before hook, the deploy and the after hook. Hooks run again on a
// host resumed after a restart, so they must be safe to repeat (draining twice is).
// A failing after hook puts the host back on what it ran.
func (e *Engine) deployHost(ctx context.Context, r store.Rollout, pol config.RolloutPolicy, h store.RolloutHost) error {
	if err := e.hook(ctx, h.Host, "before", pol.Hooks.Before, pol.Hooks.Timeout); err != nil {
		return err
	}
	if err := e.opts.Hosts.Deploy(ctx, h.Host, r.Version, h.Started); err != nil {
		return err
	}
	err := e.hook(ctx, h.Host, "after", pol.Hooks.After, pol.Hooks.Timeout)
	if err == nil || h.From == "" {
		return err
	}
	if rerr := e.opts.Hosts.Revert(ctx, h.Host, h.From); rerr != nil {
		return fmt.Errorf("%w; rollback to %s failed: %w", err, h.From, rerr)
	}
	return fmt.Errorf("%w; rolled back to %s", err, h.From)
}

func (e *Engine) hook(ctx context.Context, host, which string, argv []string, timeout time.Duration) error {
	if len(argv) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := e.opts.Hosts.Hook(ctx, host, argv); err != nil {
		return fmt.Errorf("%s hook %v: %w", which, argv, err)
	}
	return nil
}

func (e *Engine) putHost(ctx context.Context, r store.Rollout, h store.RolloutHost, event, msg string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := e.st.Update(ctx, func(tx *store.Tx) error {
		cur, ok, err := tx.Rollout(r.ID)
		if err != nil || !ok {
			return err
		}
		if err := tx.PutRolloutHost(h); err != nil {
			return err
		}
		return e.note(tx, cur, event, h.Wave, h.Host, msg)
	})
	if err == nil && event == notify.RolloutHostFailed {
		e.wake()
	}
	return err
}

// failWave records a failed wave and what the policy does about it: pause, or abort.
func (e *Engine) failWave(ctx context.Context, id string, i int, pol config.RolloutPolicy, reason string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var dur time.Duration
	err := e.st.Update(ctx, func(tx *store.Tx) error {
		r, ok, err := tx.Rollout(id)
		if err != nil || !ok {
			return err
		}
		w := &r.Waves[i]
		w.State, w.Reason, w.Finished = WaveFailed, reason, e.opts.Now()
		dur = w.Finished.Sub(w.Started)
		if err := e.note(tx, r, notify.RolloutWaveFailed, w.Name, "", fmt.Sprintf("wave %s failed: %s", w.Name, reason)); err != nil {
			return err
		}
		msg := fmt.Sprintf("wave %s failed: %s", w.Name, reason)
		event := notify.RolloutPaused
		r.State, r.Reason = StatePaused, msg
		if pol.OnFailure == "abort" {
			r.State, r.Undo, event = StateAborting, StateAborted, notify.RolloutAborting
			msg += "; on_failure abort: rolling back every changed host"
		}
		return e.record(tx, r, event, w.Name, "", msg)
	})
	if err == nil {
		e.wake()
		if e.opts.Observe != nil {
			e.opts.Observe("wave", WaveFailed, dur)
		}
	}
	return err
}

// soak watches a deployed wave until its soak time is over, failing it when the error
// counters rise beyond the policy's thresholds; a passed wave may wait for a promote.
func (e *Engine) soak(ctx context.Context, v snapshot, i int, pol config.RolloutPolicy) (bool, error) {
	for {
		w := v.Waves[i]
		cur := e.snapshot(ctx, activeHosts(w, v.Hosts))
		if ctx.Err() != nil {
			return false, nil
		}
		if reason := gate(pol.SoakThresholds, w.Baseline, cur); reason != "" {
			return true, e.failWave(ctx, v.ID, i, pol, "soak gate: "+reason)
		}
		now := e.opts.Now()
		if !now.Before(w.SoakUntil) {
			return true, e.passWave(ctx, v.ID, i)
		}
		t := time.NewTimer(min(e.soakInterval(), w.SoakUntil.Sub(now)))
		select {
		case <-ctx.Done():
			t.Stop()
			return false, nil
		case <-t.C:
		}
		var err error
		if v, err = e.load(ctx, v.ID); err != nil {
			return false, err
		}
		if v.State != StateRunning {
			return v.State == StateAborting, nil
		}
	}
}

func (e *Engine) soakInterval() time.Duration {
	if d := e.opts.Policies().SoakInterval; d > 0 {
		return d
	}
	return 5 * time.Second
}

func (e *Engine) passWave(ctx context.Context, id string, i int) error {
	var dur time.Duration
	_, err := e.transition(ctx, id, func(tx *store.Tx, r *store.Rollout) (string, string, string, string, error) {
		w := &r.Waves[i]
		w.State, w.Finished = WavePassed, e.opts.Now()
		dur = w.Finished.Sub(w.Started)
		msg := fmt.Sprintf("wave %s passed its soak", w.Name)
		if next := i + 1; next < len(r.Waves) && (w.Promote || slices.Contains(r.HoldAfter, w.Name)) {
			if err := e.note(tx, *r, notify.RolloutWavePassed, w.Name, "", msg); err != nil {
				return "", "", "", "", err
			}
			r.State, r.AwaitingPromote = StatePaused, true
			r.Reason = fmt.Sprintf("wave %s passed; waiting for promote to wave %s", w.Name, r.Waves[next].Name)
			return notify.RolloutPaused, w.Name, "", r.Reason, nil
		}
		return notify.RolloutWavePassed, w.Name, "", msg, nil
	})
	if err == nil && e.opts.Observe != nil {
		e.opts.Observe("wave", WavePassed, dur)
	}
	return err
}

// revertAll rolls back every host the rollout changed, newest wave first, as many at once
// as each wave allows, then finishes the rollout.
func (e *Engine) revertAll(ctx context.Context, v snapshot, pol config.RolloutPolicy) error {
	for i := len(v.Waves) - 1; i >= 0; i-- {
		w := v.Waves[i]
		sem := make(chan struct{}, max(1, w.MaxParallel))
		var wg sync.WaitGroup
		for _, name := range w.Hosts {
			h := v.Hosts[name]
			switch h.State {
			case HostSucceeded, HostRunning, HostRollingBack:
			default:
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := e.revertHost(ctx, v.Rollout, h); err != nil && ctx.Err() == nil {
					e.log.Error("record host rollback", "rollout", v.ID, "host", h.Host, "err", err)
				}
			})
		}
		wg.Wait()
		if ctx.Err() != nil {
			return nil
		}
	}
	_, err := e.transition(ctx, v.ID, func(tx *store.Tx, r *store.Rollout) (string, string, string, string, error) {
		hosts, err := tx.RolloutHosts(r.ID)
		if err != nil {
			return "", "", "", "", err
		}
		var bad []string
		for _, h := range hosts {
			if h.State == HostRollbackFailed {
				bad = append(bad, h.Host)
			}
		}
		slices.Sort(bad)
		r.Finished = e.opts.Now()
		if err := releaseLeases(tx, *r); err != nil {
			return "", "", "", "", err
		}
		if len(bad) > 0 {
			r.State = StateFailed
			r.Reason = fmt.Sprintf("%s; could not roll back %v", r.Reason, bad)
			return notify.RolloutFailed, "", "", r.Reason, nil
		}
		r.State = r.Undo
		event := notify.RolloutAborted
		if r.State == StateRolledBack {
			event = notify.RolloutRolledBack
		}
		return event, "", "", r.Reason, nil
	})
	return err
}

func (e *Engine) revertHost(ctx context.Context, r store.Rollout, h store.RolloutHost) error {
	if h.State != HostRollingBack {
		h.State, h.Reverted = HostRollingBack, e.opts.Now()
		if err := e.putHost(ctx, r, h, "rollout.host.rolling_back", fmt.Sprintf("%s: rolling back to %s", h.Host, h.From)); err != nil {
			return err
		}
	}
	var err error
	if h.From == "" {
		err = fmt.Errorf("no version ran on %s before the rollout", h.Host)
	} else {
		err = e.opts.Hosts.Revert(ctx, h.Host, h.From)
	}
	if ctx.Err() != nil {
		return nil
	}
	h.State, h.Finished = HostRolledBack, e.opts.Now()
	event, msg := "rollout.host.rolled_back", fmt.Sprintf("%s: back on %s", h.Host, h.From)
	if err != nil {
		h.State, h.Error = HostRollbackFailed, err.Error()
		event, msg = "rollout.host.rollback_failed", fmt.Sprintf("%s: rollback to %s failed: %v", h.Host, h.From, err)
	}
	return e.putHost(ctx, r, h, event, msg)
}
