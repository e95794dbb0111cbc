package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/patchctl/patchctl/store"
)

// Operation event types, in the order an operation emits them.
const (
	EventAccepted = "accepted" // the daemon took the operation; it runs whatever happens to the client
	EventStep     = "step"     // a step is about to run
	EventInfo     = "info"     // something worth showing (a step failed, an abort was asked)
	EventDone     = "done"     // the end: State, and Result or Error
)

// Operation end states (OpEvent.State of the done event, OpInfo.State).
const (
	OpRunning    = "running"
	OpSucceeded  = "succeeded"
	OpFailed     = "failed"
	OpRolledBack = "rolled_back"
	OpAborted    = "aborted"
)

// OpEvent is one thing that happened in an operation; the socket streams them as
// newline-delimited JSON.
type OpEvent struct {
	Seq     int             `json:"seq"`
	Time    time.Time       `json:"time"`
	Op      string          `json:"op"`
	Type    string          `json:"type"`
	Host    string          `json:"host,omitempty"`
	Step    string          `json:"step,omitempty"`
	Message string          `json:"message,omitempty"`
	By      string          `json:"by,omitempty"`     // who asked (accepted) or aborted (info)
	State   string          `json:"state,omitempty"`  // done
	Result  json.RawMessage `json:"result,omitempty"` // done: the method's reply
	Error   *Error          `json:"error,omitempty"`  // done: why it failed, if it has no reply
}

// OpInfo describes an operation.
type OpInfo struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	Hosts    []string  `json:"hosts"`
	By       string    `json:"by"`
	State    string    `json:"state"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
}

// ErrAborted is the cause of an operation's cancellation by `patchctl abort`.
var ErrAborted = errors.New("aborted on request")

// Op is one accepted operation: it runs on a goroutine of the daemon, records its events
// for anyone following, and ends with one done event.
type Op struct {
	r      *Runner
	cancel context.CancelCauseFunc
	done   chan struct{}

	mu      sync.Mutex
	info    OpInfo
	events  []OpEvent
	changed chan struct{} // closed and replaced at each event
	held    []string      // hosts this operation holds
}

// ID is the operation's id.
func (o *Op) ID() string { return o.info.ID }

// Info is a snapshot of the operation's description and state.
func (o *Op) Info() OpInfo {
	o.mu.Lock()
	defer o.mu.Unlock()
	i := o.info
	i.Hosts = slices.Clone(i.Hosts)
	return i
}

// Done is closed when the operation has ended.
func (o *Op) Done() <-chan struct{} { return o.done }

// Emit records an event and wakes the followers; Seq, Time and Op are set here.
func (o *Op) Emit(e OpEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e.Seq, e.Time, e.Op = len(o.events)+1, o.r.now().UTC(), o.info.ID
	o.events = append(o.events, e)
	close(o.changed)
	o.changed = make(chan struct{})
}

// Events returns the events after seq, whether the operation has ended, and a channel
// closed at the next event.
func (o *Op) Events(after int) ([]OpEvent, bool, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var evs []OpEvent
	if after < len(o.events) {
		evs = slices.Clone(o.events[max(after, 0):])
	}
	ended := len(o.events) > 0 && o.events[len(o.events)-1].Type == EventDone
	return evs, ended, o.changed
}

// Follow calls fn with every event after seq as it happens, until the done event (its
// last call) or until ctx ends.
func (o *Op) Follow(ctx context.Context, after int, fn func(OpEvent) error) error {
	for {
		evs, ended, changed := o.Events(after)
		for _, e := range evs {
			if err := fn(e); err != nil {
				return err
			}
			after = e.Seq
		}
		if ended {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Acquire makes the operation hold one more host, for operations that reach hosts one
// after another (fleet rollouts); release gives it back before the operation ends. Hosts
// named at Start are held for the whole operation.
func (o *Op) Acquire(host string) (release func(), err error) {
	if err := o.r.hold(o, []string{host}); err != nil {
		return nil, err
	}
	return func() { o.r.release(o, []string{host}) }, nil
}

// Runner runs operations on a context it owns: a client that goes away (killed CLI,
// closed connection) changes nothing; only Abort and Shutdown cancel an operation. It
// keeps at most one operation per host and remembers finished operations for attach.
type Runner struct {
	log  *slog.Logger
	now  func() time.Time
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu    sync.Mutex
	ops   map[string]*Op
	order []string       // ids, oldest first, to forget the oldest finished ones
	hosts map[string]*Op // host → the operation holding it
}

// keepFinished is how many finished operations stay attachable.
const keepFinished = 200

// NewRunner returns a runner whose operations live until Shutdown.
func NewRunner(log *slog.Logger, now func() time.Time) *Runner {
	ctx, stop := context.WithCancel(context.Background())
	return &Runner{log: log, now: now, ctx: ctx, stop: stop, ops: map[string]*Op{}, hosts: map[string]*Op{}}
}

// BusyError means a host is held by another operation.
type BusyError struct {
	Host string
	Op   OpInfo
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("host %s is busy: %s %s (asked by %s) is running; follow it with `patchctl attach %s`",
		e.Host, e.Op.Kind, e.Op.ID, e.Op.By, e.Op.ID)
}

// ErrStopping means the daemon is shutting down and accepts no operation.
var ErrStopping = errors.New("the daemon is stopping: no new operation")

// Start accepts an operation that holds hosts, asked by by, and runs fn on a goroutine of
// the runner. It returns once the operation is accepted (or refused: a busy host, a
// stopping daemon). fn's ctx carries by for the events it records; its result becomes the
// done event.
func (r *Runner) Start(kind string, hosts []string, by string, fn func(ctx context.Context, op *Op) (any, error)) (*Op, error) {
	if r.ctx.Err() != nil {
		return nil, ErrStopping
	}
	id := newOpID(r.now())
	ctx, cancel := context.WithCancelCause(store.WithActor(r.ctx, by))
	o := &Op{r: r, cancel: cancel, done: make(chan struct{}), changed: make(chan struct{}),
		info: OpInfo{ID: id, Kind: kind, Hosts: slices.Clone(hosts), By: by, State: OpRunning, Started: r.now().UTC()}}
	if o.info.Hosts == nil {
		o.info.Hosts = []string{}
	}
	r.mu.Lock()
	r.ops[id] = o
	r.order = append(r.order, id)
	r.mu.Unlock()
	if err := r.hold(o, hosts); err != nil {
		r.forget(id)
		cancel(nil)
		return nil, err
	}
	o.Emit(OpEvent{Type: EventAccepted, Message: kind + " " + strings.Join(hosts, ", "), By: by})
	r.log.Info("operation accepted", "op", id, "kind", kind, "hosts", hosts, "by", by)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel(nil)
		res, err := run(ctx, o, fn)
		r.finish(o, res, err, context.Cause(ctx))
	}()
	return o, nil
}

// run calls fn, turning a panic into a failure: the daemon outlives a bug in one operation.
func run(ctx context.Context, o *Op, fn func(context.Context, *Op) (any, error)) (res any, err error) {
	defer func() {
		if p := recover(); p != nil {
			o.r.log.Error("operation panicked", "op", o.ID(), "panic", p)
			res, err = nil, fmt.Errorf("operation %s: internal error: %v", o.ID(), p)
		}
	}()
	return fn(ctx, o)
}

// outcome is implemented by replies that carry their own failure (a deploy that rolled
// back is a reply, not an error).
type outcome interface{ outcome() string }

// finish records the end of o; cause is why its context ended, if it did.
func (r *Runner) finish(o *Op, res any, err error, cause error) {
	done := OpEvent{Type: EventDone, State: OpSucceeded}
	if err == nil {
		if oc, ok := res.(outcome); ok {
			done.State = oc.outcome()
		}
		raw, merr := json.Marshal(res)
		if merr != nil {
			err = fmt.Errorf("encode %s result: %w", o.info.Kind, merr)
		}
		done.Result = raw
	}
	if err != nil {
		done.State, done.Result, done.Error = OpFailed, nil, asError(err)
		done.Message = err.Error()
	}
	if errors.Is(cause, ErrAborted) && done.State == OpFailed {
		done.State = OpAborted // a deploy aborted after its switch says rolled_back
	}
	r.release(o, nil)
	o.mu.Lock()
	o.info.State, o.info.Finished = done.State, r.now().UTC()
	o.mu.Unlock()
	o.Emit(done)
	close(o.done)
	r.log.Info("operation finished", "op", o.ID(), "kind", o.info.Kind, "state", done.State)
	r.trim()
}

// hold marks hosts held by o, all or none.
func (r *Runner) hold(o *Op, hosts []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range hosts {
		if other, ok := r.hosts[h]; ok && other != o {
			return &Error{Kind: KindFailed, Msg: (&BusyError{Host: h, Op: other.Info()}).Error()}
		}
	}
	for _, h := range hosts {
		r.hosts[h] = o
	}
	o.mu.Lock()
	o.held = append(o.held, hosts...)
	o.mu.Unlock()
	return nil
}

// release frees hosts held by o (nil: all of them).
func (r *Runner) release(o *Op, hosts []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	if hosts == nil {
		hosts = o.held
	}
	for _, h := range hosts {
		if r.hosts[h] == o {
			delete(r.hosts, h)
		}
	}
	o.held = slices.DeleteFunc(o.held, func(h string) bool { return slices.Contains(hosts, h) })
}

func (r *Runner) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.ops, id)
	r.order = slices.DeleteFunc(r.order, func(s string) bool { return s == id })
}

// trim forgets the oldest finished operations past keepFinished.
func (r *Runner) trim() {
	r.mu.Lock()
	defer r.mu.Unlock()
	excess := len(r.order) - keepFinished
	for i := 0; i < len(r.order) && excess > 0; {
		o := r.ops[r.order[i]]
		select {
		case <-o.done:
			delete(r.ops, r.order[i])
			r.order = slices.Delete(r.order, i, i+1)
			excess--
		default:
			i++
		}
	}
}

// Get finds an operation by id.
func (r *Runner) Get(id string) (*Op, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o, ok := r.ops[id]
	return o, ok
}

// OnHost is the operation holding host, or nil.
func (r *Runner) OnHost(host string) *Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hosts[host]
}

// List describes the known operations, oldest first.
func (r *Runner) List() []OpInfo {
	r.mu.Lock()
	ops := make([]*Op, 0, len(r.order))
	for _, id := range r.order {
		ops = append(ops, r.ops[id])
	}
	r.mu.Unlock()
	out := make([]OpInfo, 0, len(ops))
	for _, o := range ops {
		out = append(out, o.Info())
	}
	return out
}

// Abort cancels a running operation; what it does then is the operation's own business
// (a deploy rolls back to the build that ran before).
func (r *Runner) Abort(id, by string) (*Op, error) {
	o, ok := r.Get(id)
	if !ok {
		return nil, unknownOp(id)
	}
	select {
	case <-o.done:
		return o, &Error{Kind: KindFailed, Msg: fmt.Sprintf("operation %s already ended: %s", id, o.Info().State)}
	default:
	}
	o.Emit(OpEvent{Type: EventInfo, Message: "abort requested", By: by})
	r.log.Warn("operation abort requested", "op", id, "by", by)
	o.cancel(ErrAborted)
	return o, nil
}

func unknownOp(id string) error {
	return &Error{Kind: KindUsage, Msg: fmt.Sprintf("no operation %q in this daemon (finished operations are kept until it restarts; `patchctl ops` lists them)", id)}
}

// Shutdown refuses new operations, cancels the running ones and waits for them to end
// or for ctx. An interrupted deploy is finished or undone by the per-host recovery when
// the daemon is back.
func (r *Runner) Shutdown(ctx context.Context) {
	r.stop()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		r.log.Warn("operations still running at the shutdown timeout")
	}
}

func newOpID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "op-" + now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b)
}

// OpArgs name one operation.
type OpArgs struct {
	ID string `json:"id"`
}

func setupOps(_ context.Context, a *App) error {
	handle(a, "ops", func(context.Context, struct{}) (any, error) { return a.ops.List(), nil })
	handle(a, "op", func(_ context.Context, args OpArgs) (any, error) {
		o, ok := a.ops.Get(args.ID)
		if !ok {
			return nil, unknownOp(args.ID)
		}
		return o.Info(), nil
	})
	handle(a, "abort", func(ctx context.Context, args OpArgs) (any, error) {
		o, err := a.ops.Abort(args.ID, callerOf(ctx).String())
		if err != nil {
			return nil, err
		}
		return o.Info(), nil
	})
	return nil
}
