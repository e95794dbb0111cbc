package rollout

import (
	"context"
	"errors"
	"fmt"

	"github.com/patchctl/patchctl/store"
)

// ErrInterrupted is the cause recorded for an operation that patchctl did not finish
// (killed, crashed, machine lost) and that was resumed later.
var ErrInterrupted = errors.New("operation interrupted")

// Rollback switches a host to another installed build (to: a slot name or a version; ""
// = the previous good build), restarts nutcracker and smoke-tests it. The target passes
// the same pre-flight as a deploy before the running proxy is touched, and if it still
// fails to start or serve, the build that ran is restored (ErrRolledBack). It needs
// nothing from the build that runs now, so it works when that build is broken. With no
// other good build it returns ErrNothingToRollBack; rolling back to the build the host is
// on restarts it if it does not serve.
func (r *Rollout) Rollback(ctx context.Context, h HostSpec, to string) (Result, error) {
	return r.resumed(ctx, h, func(x *run, current string, hs HostState) (Result, error) {
		hs.Current = current // the host is the truth about what runs
		target, err := pickTarget(&hs, to)
		if err != nil {
			return Result{}, fmt.Errorf("host %s: %w", h.Name, err)
		}
		x.newOp(KindRollback, current, hs, *target)
		if target.Name == current {
			return x.startAgain(ctx, *target, x.fs.binary(target.Name))
		}
		x.op.ProxyDown = current != "" && !x.serving(ctx, "")
		return x.checkAndAdvance(ctx, *target)
	})
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
	x, unlock, err := r.open(ctx, h, DeployOptions{})
	if err != nil {
		return Result{}, false, err
	}
	defer unlock()
	ok, err = x.resume(ctx)
	return Result{Operation: x.op}, ok, err
}

// resume takes over the host's unfinished operation, if any. The rule: before the switch
// the host has not changed, so close the record (removing a slot the operation created;
// an adoption is undone, the adopted process untouched);
// a target that passed its pre-flight is switched to again when nothing better is known
// (a rollback, a first install, a restart of a stopped proxy); otherwise, or once the way
// back had begun, the build that ran before is restored.
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
	case op.Kind == KindAdopt:
		x.op.Interrupted = true
		if err = x.unadopt(ctx); err == nil {
			_, err = x.refuse(ctx, cause, OpAborted)
		}
		if errors.Is(err, ErrInterrupted) {
			err = nil
		}
	case op.Step == StepInstall || op.Step == StepPreflight:
		// The switch step is recorded before the symlink moves, so the host still runs From.
		x.op.Interrupted = true
		_, err = x.refuse(ctx, cause, OpAborted)
		if errors.Is(err, ErrInterrupted) {
			err = nil
		}
	case op.Step == StepRollbackSwitch || op.Step == StepRollbackRestart || op.Step == StepRollbackSmoke:
		err = x.rollBack(ctx, cause)
	default:
		if op.Kind == KindDeploy && op.From != "" && op.From != op.To {
			x.op.Interrupted = true // no check has judged the new build yet
			err = x.rollBack(ctx, cause)
			break
		}
		var target Slot
		if target, err = x.slotNamed(ctx, op.To); err == nil {
			_, err = x.advance(ctx, target)
		}
	}
	if errors.Is(err, ErrRolledBack) {
		err = nil
	}
	return true, err
}
