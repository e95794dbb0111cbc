package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/store"
)

// Step is one step of an operation. The operation record names the step about to run
// before it runs.
type Step string

// Steps, in the order they run.
const (
	StepInstall         Step = "install"
	StepPreflight       Step = "preflight"
	StepSwitch          Step = "switch"
	StepRestart         Step = "restart"
	StepSmoke           Step = "smoke"
	StepRollbackSwitch  Step = "rollback-switch"
	StepRollbackRestart Step = "rollback-restart"
	StepRollbackSmoke   Step = "rollback-smoke"
	StepDone            Step = "done"
)

// OpState is the outcome of an operation.
type OpState string

// Operation states.
const (
	OpRunning    OpState = "running"
	OpSucceeded  OpState = "succeeded"
	OpRolledBack OpState = "rolled_back" // the new build failed; the previous one runs again
	OpFailed     OpState = "failed"      // and could not be undone
	OpAborted    OpState = "aborted"     // interrupted before the host changed
)

// Operation kinds.
const (
	KindDeploy   = "deploy"
	KindRollback = "rollback"
)

// StepRecord is one step an operation went through.
type StepRecord struct {
	Step  Step      `json:"step"`
	Time  time.Time `json:"time"`
	Error string    `json:"error,omitempty"`
}

// Operation is one deploy or rollback of one host.
type Operation struct {
	ID          string       `json:"id"`
	Host        string       `json:"host"`
	Kind        string       `json:"kind"`
	From        string       `json:"from,omitempty"` // slot running before; "" on a fresh host
	To          string       `json:"to"`
	FromVersion string       `json:"from_version,omitempty"`
	ToVersion   string       `json:"to_version"`
	Step        Step         `json:"step"`
	State       OpState      `json:"state"`
	Error       string       `json:"error,omitempty"`
	Resumed     bool         `json:"resumed,omitempty"`
	Started     time.Time    `json:"started"`
	Finished    time.Time    `json:"finished,omitzero"`
	Steps       []StepRecord `json:"steps"`
}

// Result is what an operation did, or for a dry run, would do.
type Result struct {
	Operation Operation `json:"operation"`
	Plan      []string  `json:"plan"`      // dry run: the steps that would run
	Unchanged bool      `json:"unchanged"` // the host already ran the requested build
	Pruned    []string  `json:"pruned"`    // slots removed from the host afterwards
}

// DeployOptions tune one deploy.
type DeployOptions struct {
	DryRun bool
	// Keep is how many slots stay on the host (default 5).
	Keep int
	// SmokeTimeout bounds each smoke test (default 10s).
	SmokeTimeout time.Duration
}

func (o DeployOptions) withDefaults() DeployOptions {
	if o.Keep <= 0 {
		o.Keep = 5
	}
	if o.SmokeTimeout <= 0 {
		o.SmokeTimeout = 10 * time.Second
	}
	return o
}

// stepTimeout bounds one step on the host (an upload over a slow link included).
const stepTimeout = 2 * time.Minute

func newID(now time.Time) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b)
}

func loadOp(tx *store.Tx, host string) (Operation, bool, error) {
	var op Operation
	ok, err := tx.Host(kindOperation, host, &op)
	if err != nil {
		return op, false, fmt.Errorf("read operation of %s: %w", host, err)
	}
	return op, ok && op.ID != "", nil
}

// run holds what one operation needs while it runs.
type run struct {
	r     *Rollout
	h     HostSpec
	fs    hostFS
	ctl   controller
	conf  []byte // the host's nutcracker.yml
	pools []pool
	opts  DeployOptions
	op    Operation
}

func (r *Rollout) prepare(ctx context.Context, h HostSpec, opts DeployOptions) (*run, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	ctl, err := newController(h)
	if err != nil {
		return nil, err
	}
	data, err := h.Transport.ReadFile(ctx, h.Config)
	if err != nil {
		return nil, fmt.Errorf("host %s: read %s: %w", h.Name, h.Config, err)
	}
	pools, err := parsePools(h.Config, data)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return &run{r: r, h: h, fs: hostFS{h}, ctl: ctl, conf: data, pools: pools, opts: opts.withDefaults()}, nil
}

// record writes the operation, applies fn to the slot table, logs an event and, when
// alert is set, enqueues it, all in one transaction. It survives the caller's cancellation:
// a half-recorded operation is worse than a late one.
// begin finishes or undoes an unfinished operation of the host (when resume is set; a dry
// run changes nothing), then reads the slot the host runs and the recorded slot table.
func (x *run) begin(ctx context.Context, resume bool) (current string, hs HostState, err error) {
	if resume {
		if _, err := x.resume(ctx); err != nil {
			return "", HostState{}, fmt.Errorf("resume unfinished operation: %w", err)
		}
	}
	if current, err = x.fs.readCurrent(ctx); err != nil {
		return "", HostState{}, err
	}
	hs, err = x.r.Slots(ctx, x.h.Name)
	return current, hs, err
}

func (x *run) record(ctx context.Context, msg string, fn func(*HostState), alert *notify.Envelope) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := x.r.st.Update(ctx, func(tx *store.Tx) error {
		hs, err := loadState(tx, x.h.Name)
		if err != nil {
			return err
		}
		if fn != nil {
			fn(&hs)
		}
		if x.op.State != OpRunning {
			x.op.Finished = tx.Now()
			hs.History = append(hs.History, x.op)
		}
		if err := putState(tx, hs); err != nil {
			return err
		}
		if err := tx.PutHost(kindOperation, x.h.Name, x.op); err != nil {
			return err
		}
		kind := x.op.Kind + ".step"
		if x.op.State != OpRunning {
			kind = x.op.Kind + "." + string(x.op.State)
		}
		if _, err := tx.AppendEvent(store.Event{Kind: kind, Subject: x.h.Name, Message: msg, Fields: map[string]string{
			"op": x.op.ID, "step": string(x.op.Step), "from": x.op.From, "to": x.op.To, "error": x.op.Error,
		}}); err != nil {
			return err
		}
		if alert != nil {
			if _, err := notify.Enqueue(tx, "deploy:"+x.h.Name+":"+x.op.ID, *alert); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record operation %s: %w", x.op.ID, err)
	}
	x.r.log.Info(msg, "host", x.h.Name, "op", x.op.ID, "step", x.op.Step, "state", x.op.State)
	return nil
}

// step records that s is about to run.
func (x *run) step(ctx context.Context, s Step, fn func(*HostState)) error {
	x.op.Step = s
	x.op.Steps = append(x.op.Steps, StepRecord{Step: s, Time: x.r.opts.Now()})
	if err := x.record(ctx, "step "+string(s), fn, nil); err != nil {
		return err
	}
	if x.r.opts.OnStep != nil {
		x.r.opts.OnStep(x.op)
	}
	return nil
}

// fail notes err on the current step.
func (x *run) fail(err error) {
	if n := len(x.op.Steps); n > 0 {
		x.op.Steps[n-1].Error = err.Error()
	}
	x.op.Error = err.Error()
}

// finish ends the operation in state s.
func (x *run) finish(ctx context.Context, s OpState, fn func(*HostState), alert *notify.Envelope) error {
	x.op.State, x.op.Step = s, StepDone
	return x.record(ctx, string(x.op.Kind)+" "+string(s), fn, alert)
}

// activate switches to slot name, restarts and smoke-tests it as version; pre changes the
// slot table with the record of the first step.
func (x *run) activate(ctx context.Context, name, version string, sw, rs, sm Step, pre func(*HostState)) error {
	if err := x.step(ctx, sw, pre); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	err := x.fs.switchTo(sctx, name, x.op.ID)
	cancel()
	if err != nil {
		return err
	}
	if err := x.step(ctx, rs, func(hs *HostState) { hs.Current = name }); err != nil {
		return err
	}
	var ports []int
	for _, p := range x.pools {
		if p.Port > 0 {
			ports = append(ports, p.Port)
		}
	}
	sctx, cancel = context.WithTimeout(ctx, stepTimeout)
	err = x.ctl.restart(sctx, ports)
	cancel()
	if err != nil {
		return err
	}
	if err := x.step(ctx, sm, nil); err != nil {
		return err
	}
	return smoke(ctx, x.h, x.pools, version, x.op.ID, x.opts.SmokeTimeout)
}

// alert is the outbox entry of a failed operation. The first step that failed is the
// cause; a later failed step is the way back failing too. cause stands in when no step
// recorded an error.
func (x *run) alert(ctx context.Context, kind string, cause error) *notify.Envelope {
	o := &notify.Operation{Host: x.h.Name, Op: x.op.ID, Operation: x.op.Kind, From: x.op.From, FromVersion: x.op.FromVersion,
		To: x.op.To, ToVersion: x.op.ToVersion, By: store.Actor(ctx)}
	for _, s := range x.op.Steps {
		switch {
		case s.Error == "":
		case o.Error == "":
			o.Step, o.Error = string(s.Step), s.Error
		default:
			o.RollbackStep, o.RollbackError = string(s.Step), s.Error
		}
	}
	if o.Error == "" && cause != nil {
		o.Step, o.Error = string(x.op.Step), cause.Error()
	}
	return &notify.Envelope{Kind: kind, Operation: o}
}

// rollBack returns a deploy whose new build failed (cause) to the build it replaced.
func (x *run) rollBack(ctx context.Context, cause error) error {
	// The way back runs even when the caller gave up: leaving a host on a failed build is
	// the worst outcome.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stepTimeout+x.opts.SmokeTimeout)
	defer cancel()
	x.fail(cause)
	if x.op.From == "" {
		if err := x.finish(ctx, OpFailed, func(hs *HostState) {
			hs.setState(x.op.To, SlotFailed, x.r.opts.Now(), x.op.ID, cause.Error())
		}, x.alert(ctx, notify.OutboxDeployFailed, cause)); err != nil {
			return err
		}
		return fmt.Errorf("deploy %s to %s: %w (nothing to roll back to)", x.op.ToVersion, x.h.Name, cause)
	}
	markFailed := func(hs *HostState) {
		if s := hs.slot(x.op.To); s != nil && s.State != SlotFailed {
			hs.setState(x.op.To, SlotFailed, x.r.opts.Now(), x.op.ID, cause.Error())
		}
	}
	if err := x.activate(ctx, x.op.From, x.op.FromVersion, StepRollbackSwitch, StepRollbackRestart, StepRollbackSmoke, markFailed); err != nil {
		x.fail(err)
		if rerr := x.finish(ctx, OpFailed, nil, x.alert(ctx, notify.OutboxDeployRollbackFailed, err)); rerr != nil {
			return rerr
		}
		return fmt.Errorf("deploy %s to %s: %w; rollback to %s failed: %w", x.op.ToVersion, x.h.Name, cause, x.op.FromVersion, err)
	}
	if err := x.finish(ctx, OpRolledBack, func(hs *HostState) {
		hs.setState(x.op.From, SlotGood, x.r.opts.Now(), x.op.ID, "rolled back to")
	}, x.alert(ctx, notify.OutboxDeployRolledBack, cause)); err != nil {
		return err
	}
	return fmt.Errorf("deploy %s to %s: %w: %w", x.op.ToVersion, x.h.Name, ErrRolledBack, cause)
}

// Deploy installs art on a host, switches to it, restarts nutcracker and smoke-tests it;
// a failed smoke test switches back to the build that ran before (ErrRolledBack).
// A failed pre-flight (ErrPreflight, ErrWrongVersion) leaves the host as it was.
// Deploying the build that already runs is a no-op.
func (r *Rollout) Deploy(ctx context.Context, h HostSpec, art Artifact, opts DeployOptions) (Result, error) {
	x, err := r.prepare(ctx, h, opts)
	if err != nil {
		return Result{}, err
	}
	unlock, err := r.lock(h.Name)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	sha, err := art.digest()
	if err != nil {
		return Result{}, err
	}
	name := slotName(art.Version, sha)
	from, hs, err := x.begin(ctx, !opts.DryRun)
	if err != nil {
		return Result{}, err
	}
	x.op = Operation{ID: newID(r.opts.Now()), Host: h.Name, Kind: KindDeploy, From: from, To: name,
		ToVersion: art.Version, State: OpRunning, Started: r.opts.Now()}
	if s := hs.slot(from); s != nil {
		x.op.FromVersion = s.Version
	} else if from != "" {
		// A slot installed outside patchctl's records: its name starts with the version.
		x.op.FromVersion = versionOfSlot(from)
	}
	if s := hs.slot(name); from == name && s != nil && s.State == SlotGood {
		return Result{Operation: x.op, Unchanged: true}, nil
	}
	if opts.DryRun {
		return Result{Operation: x.op, Plan: x.plan(art)}, nil
	}

	if err := x.step(ctx, StepInstall, func(hs *HostState) {
		if s := hs.slot(name); s == nil {
			hs.Slots = append(hs.Slots, Slot{Name: name, Version: art.Version, SHA256: sha, Installed: r.opts.Now()})
		} else if s.State == SlotRetired {
			s.Installed = r.opts.Now()
		}
		hs.setState(name, SlotInstalling, r.opts.Now(), x.op.ID, "")
	}); err != nil {
		return Result{}, err
	}
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	err = x.fs.install(sctx, art, name, sha)
	cancel()
	if err == nil {
		if err = x.step(ctx, StepPreflight, nil); err == nil {
			err = x.preflight(ctx, art, name)
		}
	}
	if err != nil {
		// Nothing switched yet: the host runs what it ran. A slot refused at pre-flight is
		// removed so the host is exactly as before.
		x.fail(err)
		cctx := context.WithoutCancel(ctx)
		if errors.Is(err, ErrPreflight) {
			if rerr := x.fs.removeSlot(cctx, name); rerr != nil {
				r.log.Warn("remove refused slot", "host", h.Name, "slot", name, "err", rerr)
			}
		}
		if rerr := x.finish(cctx, OpFailed, func(hs *HostState) {
			hs.setState(name, SlotFailed, r.opts.Now(), x.op.ID, err.Error())
		}, nil); rerr != nil {
			return Result{Operation: x.op}, rerr
		}
		return Result{Operation: x.op}, fmt.Errorf("deploy %s to %s: %w", art.Version, h.Name, err)
	}
	if err := x.activate(ctx, name, art.Version, StepSwitch, StepRestart, StepSmoke, nil); err != nil {
		return Result{Operation: x.op}, x.rollBack(ctx, err)
	}
	return x.succeed(ctx)
}

// succeed marks the new slot good and prunes old slots.
func (x *run) succeed(ctx context.Context) (Result, error) {
	var prune []string
	if err := x.finish(ctx, OpSucceeded, func(hs *HostState) {
		hs.Current = x.op.To
		hs.setState(x.op.To, SlotGood, x.r.opts.Now(), x.op.ID, "smoke test passed")
		prune = hs.prunable(x.opts.Keep)
	}, nil); err != nil {
		return Result{Operation: x.op}, err
	}
	res := Result{Operation: x.op}
	for _, name := range prune {
		if err := x.fs.removeSlot(ctx, name); err != nil {
			x.r.log.Warn("prune slot", "host", x.h.Name, "slot", name, "err", err)
			continue
		}
		res.Pruned = append(res.Pruned, name)
	}
	if len(res.Pruned) > 0 {
		err := x.r.st.Update(ctx, func(tx *store.Tx) error {
			hs, err := loadState(tx, x.h.Name)
			if err != nil {
				return err
			}
			for _, name := range res.Pruned {
				hs.setState(name, SlotRetired, tx.Now(), x.op.ID, "pruned")
			}
			return putState(tx, hs)
		})
		if err != nil {
			return res, fmt.Errorf("record pruned slots: %w", err)
		}
	}
	return res, nil
}

func (x *run) preflight(ctx context.Context, art Artifact, name string) error {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	bin := x.fs.binary(name)
	v, err := x.fs.version(ctx, bin)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	if v != art.Version {
		return fmt.Errorf("%w: %s reports %s, want %s: %w", ErrPreflight, bin, v, art.Version, ErrWrongVersion)
	}
	if err := x.fs.testConfig(ctx, bin); err != nil {
		return fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	if err := x.r.opts.Linter.Lint(x.h.Config, x.conf, art.Version); err != nil {
		return fmt.Errorf("%w: lint for %s: %w", ErrPreflight, art.Version, err)
	}
	return nil
}

func (x *run) plan(art Artifact) []string {
	from := x.op.From
	if from == "" {
		from = "(nothing)"
	}
	p := []string{
		fmt.Sprintf("install %s as %s", art.Path, x.fs.binary(x.op.To)),
		fmt.Sprintf("pre-flight: %s -V reports %s; -t -c %s passes", x.fs.binary(x.op.To), art.Version, x.h.Config),
		fmt.Sprintf("switch %s from %s to %s", x.fs.current(), from, x.op.To),
		fmt.Sprintf("restart nutcracker (%s)", x.modeName()),
		fmt.Sprintf("smoke test: stats %s reports %s; canary through %d pool(s); error counters steady", x.h.StatsAddr, art.Version, len(x.pools)),
	}
	if x.op.From != "" {
		p = append(p, fmt.Sprintf("on failure: switch back to %s, restart, smoke test", x.op.From))
	}
	return p
}

func (x *run) modeName() string {
	if x.h.Process.Mode == "" {
		return ModePidfile
	}
	return x.h.Process.Mode
}

// versionOfSlot returns the version part of a slot name.
func versionOfSlot(name string) string {
	if len(name) > 13 && name[len(name)-13] == '-' {
		return name[:len(name)-13]
	}
	return name
}
