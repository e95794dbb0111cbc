package rollout

import (
	"context"
	"errors"
	"fmt"

	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/store"
)

// ErrInterrupted is the cause recorded for an operation that patchctl did not finish
// (killed, crashed, machine lost) and that was resumed later.
var ErrInterrupted = errors.New("operation interrupted")

// Rollback switches a host to another installed build (to: a slot name or a version; ""
// = the previous good build), restarts nutcracker and smoke-tests it. It needs nothing
// from the build that runs now, so it works when that build is broken. With no other
// good build it returns ErrNothingToRollBack.
func (r *Rollout) Rollback(ctx context.Context, h HostSpec, to string) (Result, error) {
	x, err := r.prepare(ctx, h, DeployOptions{})
	if err != nil {
		return Result{}, err
	}
	unlock, err := r.lock(h.Name)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	current, hs, err := x.begin(ctx, true)
	if err != nil {
		return Result{}, err
	}
	hs.Current = current // the host is the truth about what runs
	target, err := pickTarget(&hs, to)
	if err != nil {
		return Result{}, fmt.Errorf("host %s: %w", h.Name, err)
	}
	x.op = Operation{ID: newID(r.opts.Now()), Host: h.Name, Kind: KindRollback, From: current,
		To: target.Name, ToVersion: target.Version, State: OpRunning, Started: r.opts.Now()}
	if s := hs.slot(current); s != nil {
		x.op.FromVersion = s.Version
	}
	if target.Name == current {
		return Result{Operation: x.op, Unchanged: true}, nil
	}
	if _, err := x.fs.remoteDigest(ctx, x.fs.binary(target.Name)); err != nil {
		return Result{}, err
	}
	return x.rollForward(ctx)
}

// rollForward runs a rollback operation (x.op) from its switch step to the end.
func (x *run) rollForward(ctx context.Context) (Result, error) {
	if err := x.activate(ctx, x.op.To, x.op.ToVersion, StepSwitch, StepRestart, StepSmoke, nil); err != nil {
		x.fail(err)
		if rerr := x.finish(ctx, OpFailed, nil, x.alert(ctx, notify.OutboxRollbackFailed, err)); rerr != nil {
			return Result{Operation: x.op}, rerr
		}
		return Result{Operation: x.op}, fmt.Errorf("roll %s back to %s: %w", x.h.Name, x.op.ToVersion, err)
	}
	return x.succeed(ctx)
}

// pickTarget finds the slot a rollback goes to.
func pickTarget(hs *HostState, to string) (*Slot, error) {
	if to == "" {
		if p := hs.previousGood(); p != nil {
			return p, nil
		}
		return nil, ErrNothingToRollBack
	}
	if s := hs.slot(to); s != nil && s.State != SlotRetired {
		return s, nil
	}
	// A version: its most recently active good slot, else its newest installed one.
	var best *Slot
	for i := range hs.Slots {
		s := &hs.Slots[i]
		if s.Version != to || s.State == SlotRetired {
			continue
		}
		switch {
		case best == nil:
			best = s
		case (s.State == SlotGood) != (best.State == SlotGood):
			if s.State == SlotGood {
				best = s
			}
		case s.LastActive.After(best.LastActive) || s.LastActive.Equal(best.LastActive) && s.Installed.After(best.Installed):
			best = s
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%q: %w", to, ErrUnknownSlot)
	}
	return best, nil
}

// Recover finishes or undoes an operation on the host that patchctl did not finish. It
// reports ok false when there was none. Deploy and Rollback call it first.
func (r *Rollout) Recover(ctx context.Context, h HostSpec) (res Result, ok bool, err error) {
	x, err := r.prepare(ctx, h, DeployOptions{})
	if err != nil {
		return Result{}, false, err
	}
	unlock, err := r.lock(h.Name)
	if err != nil {
		return Result{}, false, err
	}
	defer unlock()
	ok, err = x.resume(ctx)
	return Result{Operation: x.op}, ok, err
}

// resume takes over the host's unfinished operation, if any. The rule: if the host may
// have changed, go back to the build that ran before; if it cannot have, just close the
// record. A rollback is redone, since it is idempotent.
func (x *run) resume(ctx context.Context) (bool, error) {
	var op Operation
	var ok bool
	err := x.r.st.View(ctx, func(tx *store.Tx) (err error) {
		op, ok, err = loadOp(tx, x.h.Name)
		return err
	})
	if err != nil || !ok || op.State != OpRunning {
		return false, err
	}
	x.op = op
	x.op.Resumed = true
	cause := fmt.Errorf("%w during step %s", ErrInterrupted, op.Step)
	x.r.log.Warn("resuming interrupted operation", "host", x.h.Name, "op", op.ID, "kind", op.Kind, "step", op.Step)
	switch {
	case op.Kind == KindRollback:
		_, err = x.rollForward(ctx)
	case op.Step == StepInstall || op.Step == StepPreflight:
		// The switch step is recorded before the symlink moves, so the host still runs From.
		x.fail(cause)
		err = x.finish(ctx, OpAborted, func(hs *HostState) {
			hs.setState(op.To, SlotFailed, x.r.opts.Now(), op.ID, cause.Error())
		}, nil)
	case op.From == "":
		// A first install has nothing to go back to: finish it.
		if err = x.activate(ctx, op.To, op.ToVersion, StepSwitch, StepRestart, StepSmoke, nil); err != nil {
			err = x.rollBack(ctx, err)
		} else {
			_, err = x.succeed(ctx)
		}
	default:
		err = x.rollBack(ctx, cause)
		if errors.Is(err, ErrRolledBack) {
			err = nil
		}
	}
	return true, err
}
