package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/nutcracker"
	"github.com/patchctl/patchctl/store"
)

// Step is one step of an operation. The operation record names the step about to run
// before it runs.
type Step string

// Steps, in the order they run.
const (
	StepAdopt           Step = "adopt"
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
	OpFailed     OpState = "failed"      // refused at pre-flight, or could not be undone
	OpAborted    OpState = "aborted"     // interrupted before the host changed
)

// Operation kinds.
const (
	KindDeploy   = "deploy"
	KindRollback = "rollback"
	KindAdopt    = "adopt"
)

// StepRecord is one step an operation went through.
type StepRecord struct {
	Step  Step      `json:"step"`
	Time  time.Time `json:"time"`
	Note  string    `json:"note,omitempty"` // what the step had to wait for
	Error string    `json:"error,omitempty"`
}

// Operation is one deploy, rollback or adoption of one host.
type Operation struct {
	ID          string `json:"id"`
	Host        string `json:"host"`
	Kind        string `json:"kind"`
	From        string `json:"from,omitempty"` // slot running before; "" on a fresh host
	To          string `json:"to"`
	FromVersion string `json:"from_version,omitempty"`
	ToVersion   string `json:"to_version"`
	// CreatedSlot: the operation installed To; only then may it remove it again.
	CreatedSlot bool `json:"created_slot,omitempty"`
	// ProxyDown: no nutcracker answered on the stats port when the operation began.
	ProxyDown bool    `json:"proxy_down,omitempty"`
	Step      Step    `json:"step"`
	State     OpState `json:"state"`
	Error     string  `json:"error,omitempty"`
	Resumed   bool    `json:"resumed,omitempty"`
	// Interrupted: patchctl stopped before the operation reached a verdict on its build and
	// the recovery undid it; running it again is how to finish it.
	Interrupted bool         `json:"interrupted,omitempty"`
	Started     time.Time    `json:"started"`
	Finished    time.Time    `json:"finished,omitzero"`
	Steps       []StepRecord `json:"steps"`
}

// Result is what an operation did, or for a dry run, would do.
type Result struct {
	Operation Operation `json:"operation"`
	Plan      []string  `json:"plan"`      // dry run: the steps that would run
	Unchanged bool      `json:"unchanged"` // the host already ran and served the requested build
	Pruned    []string  `json:"pruned"`    // slots removed from the host afterwards
}

// DeployOptions tune one deploy; zero values take the host's settings.
type DeployOptions struct {
	DryRun bool
	// Keep is how many slots stay on the host (default HostSpec.Keep, else 5).
	Keep int
	// SmokeTimeout bounds each smoke test (default HostSpec.SmokeTimeout, else 10s).
	SmokeTimeout time.Duration
}

func (o DeployOptions) withDefaults(h HostSpec) DeployOptions {
	if o.Keep <= 0 {
		o.Keep = h.Keep
	}
	if o.Keep <= 0 {
		o.Keep = DefaultKeep
	}
	if o.SmokeTimeout <= 0 {
		o.SmokeTimeout = h.SmokeTimeout
	}
	if o.SmokeTimeout <= 0 {
		o.SmokeTimeout = DefaultSmokeTimeout
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
	// verified names the slots whose digest this operation checked.
	verified map[string]bool
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
	return &run{r: r, h: h, fs: hostFS{h}, ctl: ctl, conf: data, pools: pools,
		opts: opts.withDefaults(h), verified: map[string]bool{}}, nil
}

// open prepares an operation on the host and holds the host's lock until unlock is called.
func (r *Rollout) open(ctx context.Context, h HostSpec, opts DeployOptions) (x *run, unlock func(), err error) {
	if x, err = r.prepare(ctx, h, opts); err != nil {
		return nil, nil, err
	}
	if unlock, err = r.lock(h.Name); err != nil {
		return nil, nil, err
	}
	return x, unlock, nil
}

// resumed runs fn on the locked host once an unfinished operation on it is finished or
// undone, with the slot the host runs and the recorded slot table (see begin).
func (r *Rollout) resumed(ctx context.Context, h HostSpec, fn func(x *run, current string, hs HostState) (Result, error)) (Result, error) {
	x, unlock, err := r.open(ctx, h, DeployOptions{})
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	current, hs, err := x.begin(ctx, true)
	if err != nil {
		return Result{}, err
	}
	return fn(x, current, hs)
}

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

// newOp starts the record of an operation from the slot that runs to target.
func (x *run) newOp(kind, current string, hs HostState, target Slot) {
	now := x.r.opts.Now()
	x.op = Operation{ID: newID(now), Host: x.h.Name, Kind: kind, From: current, To: target.Name,
		ToVersion: target.Version, State: OpRunning, Started: now}
	if s := hs.slot(current); s != nil {
		x.op.FromVersion = s.Version
	} else if current != "" {
		// A slot installed outside patchctl's records: its name starts with the version.
		x.op.FromVersion = versionOfSlot(current)
	}
}

// record writes the operation, applies fn to the slot table, logs an event and, when
// alert is set, enqueues it, all in one transaction. It survives the caller's cancellation:
// a half-recorded operation is worse than a late one.
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

// slotNamed returns the recorded slot called name; one missing from the records is
// described by its name.
func (x *run) slotNamed(ctx context.Context, name string) (Slot, error) {
	hs, err := x.r.Slots(ctx, x.h.Name)
	if err != nil {
		return Slot{}, err
	}
	if s := hs.slot(name); s != nil {
		return *s, nil
	}
	return Slot{Name: name, Version: versionOfSlot(name)}, nil
}

// verify checks that a slot's binary is the file recorded at install, before anything
// runs it.
func (x *run) verify(ctx context.Context, s Slot) error {
	if x.verified[s.Name] {
		return nil
	}
	bin := x.fs.binary(s.Name)
	have, err := x.fs.remoteDigest(ctx, bin)
	if err != nil {
		return err
	}
	if have == "" {
		return fmt.Errorf("host %s: %s: missing", x.h.Name, bin)
	}
	want := s.SHA256
	if want == "" {
		// Recorded outside patchctl: the name carries the digest's first 12 digits.
		want = s.Name[len(s.Name)-min(len(s.Name), 12):]
		have = have[:12]
	}
	if have != want {
		return x.mismatch(bin, have, want)
	}
	x.verified[s.Name] = true
	return nil
}

// checkedScript prints the sha256 of $1 and, only when it is $2, execs $1 -V: a binary
// that is not the one installed never runs.
const checkedScript = `set -e
sum=$(sha256sum < "$1")
sum=${sum%% *}
echo "$sum"
[ "$sum" = "$2" ] || exit 0
exec "$1" -V`

// checkedVersion verifies a slot's digest and returns the version its binary reports,
// in one command on the host.
func (x *run) checkedVersion(ctx context.Context, s Slot) (string, error) {
	bin := x.fs.binary(s.Name)
	if x.verified[s.Name] || s.SHA256 == "" {
		if err := x.verify(ctx, s); err != nil {
			return "", err
		}
		return x.fs.version(ctx, bin)
	}
	res, err := x.fs.run(ctx, "sh", "-c", checkedScript, "preflight", bin, s.SHA256)
	if err != nil {
		if _, serr := x.fs.run(ctx, "test", "-e", bin); serr != nil {
			return "", fmt.Errorf("host %s: %s: missing", x.h.Name, bin)
		}
		return "", fmt.Errorf("%s -V: %w", bin, err)
	}
	if have := strings.TrimSpace(string(res.Stdout)); have != s.SHA256 {
		return "", x.mismatch(bin, have, s.SHA256)
	}
	x.verified[s.Name] = true
	v, err := nutcracker.ParseVersionOutput(res.Stderr)
	if err != nil {
		return "", fmt.Errorf("host %s: %s -V: %w", x.h.Name, bin, err)
	}
	return v, nil
}

func (x *run) mismatch(bin, have, want string) error {
	return fmt.Errorf("host %s: %s: %w: sha256 %s, recorded at install %s; refusing to run it",
		x.h.Name, bin, ErrDigestMismatch, have, want)
}

// serving reports whether a nutcracker answers on the stats port, of version want unless
// want is "".
func (x *run) serving(ctx context.Context, want string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := fetchStats(ctx, x.h.StatsAddr)
	return err == nil && (want == "" || s.Version == want)
}

func (x *run) ports() []int {
	var ports []int
	for _, p := range x.pools {
		if p.Port > 0 {
			ports = append(ports, p.Port)
		}
	}
	return ports
}

// activate switches to slot to, restarts and smoke-tests it; pre changes the slot table
// with the record of the first step.
func (x *run) activate(ctx context.Context, to Slot, sw, rs, sm Step, pre func(*HostState)) error {
	if err := x.step(ctx, sw, pre); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := x.verify(sctx, to); err != nil {
		return err
	}
	if err := x.fs.switchTo(sctx, to.Name); err != nil {
		return err
	}
	var adopted *Adopted
	if err := x.step(ctx, rs, func(hs *HostState) { hs.Current, adopted = to.Name, hs.Adopted }); err != nil {
		return err
	}
	waited, err := x.ctl.restart(sctx, restartSpec{Ports: x.ports(), Adopted: adopted})
	if waited != "" {
		x.op.Steps[len(x.op.Steps)-1].Note = waited
		x.r.log.Info("restart "+waited, "host", x.h.Name, "op", x.op.ID)
	}
	if err != nil {
		return err
	}
	if err := x.step(ctx, sm, func(hs *HostState) { hs.Adopted = nil }); err != nil {
		return err
	}
	return smoke(ctx, x.h, x.pools, to.Version, x.op.ID, x.opts.SmokeTimeout, x.ctl.down)
}

// alertKinds name the alert of each way an operation can end badly. A rollback that
// restored the build that ran is still a failed rollback.
var alertKinds = map[string]struct{ failed, rolledBack, rollbackFailed string }{
	KindDeploy:   {notify.OutboxDeployFailed, notify.OutboxDeployRolledBack, notify.OutboxDeployRollbackFailed},
	KindRollback: {notify.OutboxRollbackFailed, notify.OutboxRollbackFailed, notify.OutboxRollbackFailed},
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

func (x *run) what() string {
	return fmt.Sprintf("%s %s to %s", x.op.Kind, x.op.ToVersion, x.h.Name)
}

// advance switches the host to target, which passed its pre-flight, and proves it; when
// that fails, the build that ran before is restored.
func (x *run) advance(ctx context.Context, target Slot) (Result, error) {
	err := x.activate(ctx, target, StepSwitch, StepRestart, StepSmoke, nil)
	if err == nil {
		return x.succeed(ctx)
	}
	if x.op.From != "" && x.op.From != x.op.To {
		return Result{Operation: x.op}, x.rollBack(ctx, err)
	}
	// Nothing else to go back to: a first install, or restarting a stopped proxy.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	x.fail(err)
	if rerr := x.finish(ctx, OpFailed, func(hs *HostState) {
		if x.op.From == "" {
			hs.setState(x.op.To, SlotFailed, x.r.opts.Now(), x.op.ID, err.Error())
		}
	}, x.alert(ctx, alertKinds[x.op.Kind].failed, err)); rerr != nil {
		return Result{Operation: x.op}, rerr
	}
	if x.op.From == "" {
		return Result{Operation: x.op}, fmt.Errorf("%s: %w (nothing to roll back to)", x.what(), err)
	}
	return Result{Operation: x.op}, fmt.Errorf("%s: the proxy was down and does not start again: %w", x.what(), err)
}

// rollBack returns the host from a build that failed (cause) to the one that ran before.
func (x *run) rollBack(ctx context.Context, cause error) error {
	// The way back runs even when the caller gave up: leaving a host on a failed build is
	// the worst outcome.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stepTimeout+x.opts.SmokeTimeout)
	defer cancel()
	x.fail(cause)
	kinds := alertKinds[x.op.Kind]
	from, err := x.slotNamed(ctx, x.op.From)
	if err == nil {
		err = x.activate(ctx, from, StepRollbackSwitch, StepRollbackRestart, StepRollbackSmoke, func(hs *HostState) {
			// An interruption proves nothing against a build that was installed before.
			if s := hs.slot(x.op.To); s != nil && s.State != SlotFailed && (x.op.CreatedSlot || !errors.Is(cause, ErrInterrupted)) {
				hs.setState(x.op.To, SlotFailed, x.r.opts.Now(), x.op.ID, cause.Error())
			}
		})
	}
	if err != nil {
		x.fail(err)
		if rerr := x.finish(ctx, OpFailed, nil, x.alert(ctx, kinds.rollbackFailed, err)); rerr != nil {
			return rerr
		}
		return fmt.Errorf("%s: %w; going back to %s failed: %w", x.what(), cause, x.op.FromVersion, err)
	}
	if err := x.finish(ctx, OpRolledBack, func(hs *HostState) {
		hs.setState(x.op.From, SlotGood, x.r.opts.Now(), x.op.ID, "rolled back to")
	}, x.alert(ctx, kinds.rolledBack, cause)); err != nil {
		return err
	}
	return fmt.Errorf("%s: %w to %s: %w", x.what(), ErrRolledBack, x.op.FromVersion, cause)
}

// checkAndAdvance runs the pre-flight of target and, if it passes, switches to it.
func (x *run) checkAndAdvance(ctx context.Context, target Slot) (Result, error) {
	err := x.step(ctx, StepPreflight, nil)
	if err == nil {
		err = x.preflight(ctx, target)
	}
	if err != nil {
		return x.refuse(ctx, err, OpFailed)
	}
	return x.advance(ctx, target)
}

// refuse ends an operation stopped before the switch: the host runs what it ran. A slot
// this operation installed is removed (and shows as retired); any other keeps its state.
func (x *run) refuse(ctx context.Context, err error, end OpState) (Result, error) {
	x.fail(err)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stepTimeout)
	defer cancel()
	var fn func(*HostState)
	if x.op.CreatedSlot {
		state, note := SlotRetired, "removed: "+err.Error()
		if rerr := x.fs.removeSlot(ctx, x.op.To); rerr != nil {
			x.r.log.Warn("remove refused slot", "host", x.h.Name, "slot", x.op.To, "err", rerr)
			state = SlotFailed
		}
		fn = func(hs *HostState) { hs.setState(x.op.To, state, x.r.opts.Now(), x.op.ID, note) }
	}
	if rerr := x.finish(ctx, end, fn, nil); rerr != nil {
		return Result{Operation: x.op}, rerr
	}
	return Result{Operation: x.op}, fmt.Errorf("%s: %w", x.what(), err)
}

// Deploy installs art on a host, runs its pre-flight, switches to it, restarts nutcracker
// and smoke-tests it; a failed start or smoke test switches back to the build that ran
// before (ErrRolledBack). A failed pre-flight (ErrPreflight, ErrWrongVersion,
// ErrDigestMismatch) leaves the host as it was. Deploying the build that already runs and
// serves is a no-op; if it does not serve, it is restarted.
func (r *Rollout) Deploy(ctx context.Context, h HostSpec, art Artifact, opts DeployOptions) (Result, error) {
	x, unlock, err := r.open(ctx, h, opts)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	sha, err := art.digest()
	if err != nil {
		return Result{}, err
	}
	target := Slot{Name: slotName(art.Version, sha), Version: art.Version, SHA256: sha}
	from, hs, err := x.begin(ctx, !opts.DryRun)
	if err != nil {
		return Result{}, err
	}
	x.newOp(KindDeploy, from, hs, target)
	existing := hs.slot(target.Name)
	x.op.CreatedSlot = existing == nil || existing.State == SlotRetired
	if from == target.Name && !x.op.CreatedSlot {
		return x.startAgain(ctx, *existing, art.Path)
	}
	x.op.ProxyDown = from != "" && !x.serving(ctx, "")
	if opts.DryRun {
		return Result{Operation: x.op, Plan: x.plan(art.Path)}, nil
	}

	if err := x.step(ctx, StepInstall, func(hs *HostState) {
		if s := hs.slot(target.Name); s == nil {
			hs.Slots = append(hs.Slots, Slot{Name: target.Name, Version: art.Version, SHA256: sha, Installed: r.opts.Now()})
		} else if s.State == SlotRetired {
			s.Installed = r.opts.Now()
		} else {
			return // an installed slot keeps its state whatever this deploy does before the switch
		}
		hs.setState(target.Name, SlotInstalling, r.opts.Now(), x.op.ID, "")
	}); err != nil {
		return Result{}, err
	}
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	err = x.fs.install(sctx, art, target.Name, sha)
	cancel()
	if err != nil {
		return x.refuse(ctx, err, OpFailed)
	}
	x.verified[target.Name] = true // install compared the uploaded file with the artifact
	return x.checkAndAdvance(ctx, target)
}

// startAgain handles an operation whose target is the build the host is on: nothing to do
// if it serves; otherwise the proxy is down, and is restarted after a pre-flight.
func (x *run) startAgain(ctx context.Context, target Slot, source string) (Result, error) {
	if x.serving(ctx, target.Version) {
		return Result{Operation: x.op, Unchanged: true}, nil
	}
	x.op.ProxyDown = true
	if x.opts.DryRun {
		return Result{Operation: x.op, Plan: x.plan(source)}, nil
	}
	return x.checkAndAdvance(ctx, target)
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

// preflight proves, without touching what runs, that slot s can run the host's
// nutcracker.yml: its digest, its version, lint for that version (whose reasons are more
// precise than nutcracker's), nutcracker -t, and that patchctl can restart it there.
func (x *run) preflight(ctx context.Context, s Slot) error {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	bin := x.fs.binary(s.Name)
	v, err := x.checkedVersion(ctx, s)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	if v != s.Version {
		return fmt.Errorf("%w: %s reports %s, want %s: %w", ErrPreflight, bin, v, s.Version, ErrWrongVersion)
	}
	if err := x.r.opts.Linter.Lint(x.h.Config, x.conf, s.Version); err != nil {
		return fmt.Errorf("%w: lint for %s: %w", ErrPreflight, s.Version, err)
	}
	if err := x.fs.testConfig(ctx, bin); err != nil {
		return fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	if err := x.ctl.check(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	return nil
}

func (x *run) plan(source string) []string {
	from := x.op.From
	if from == "" {
		from = "(nothing)"
	}
	var p []string
	if x.op.CreatedSlot {
		p = append(p, fmt.Sprintf("install %s as %s", source, x.fs.binary(x.op.To)))
	}
	if x.op.ProxyDown {
		p = append(p, "note: no nutcracker answers on "+x.h.StatsAddr+" now")
	}
	p = append(p,
		fmt.Sprintf("pre-flight: sha256 of %s as installed; -V reports %s; lint for %s; -t -c %s passes", x.fs.binary(x.op.To), x.op.ToVersion, x.op.ToVersion, x.h.Config),
		fmt.Sprintf("switch %s from %s to %s", x.fs.current(), from, x.op.To),
		fmt.Sprintf("restart nutcracker (%s)", x.modeName()),
		fmt.Sprintf("smoke test: stats %s reports %s; canary through %d pool(s)", x.h.StatsAddr, x.op.ToVersion, len(x.pools)),
	)
	if x.op.From != "" && x.op.From != x.op.To {
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
