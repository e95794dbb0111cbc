// Package app assembles patchctl from its configuration: the store, the tracker, the
// notifier outbox, the scheduler, the metrics endpoint and the unix-socket API. The daemon
// runs one App; a CLI command either asks the daemon over the socket or, when none runs,
// opens a short-lived App of its own. Signals stay outside (cmd/patchctl, the CLI's daemon
// command) so tests can embed an App; Options.Reload and Reload are how SIGHUP reaches it.
package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/patchctl/patchctl/artifact"
	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/internal/metrics"
	"github.com/patchctl/patchctl/inventory"
	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/patching"
	"github.com/patchctl/patchctl/rollout"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/waves"
)

// Version is patchctl's version, set at build time with -ldflags "-X ...app.Version=v1.2.3".
var Version = "dev"

// Options are what an App needs besides its configuration.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// StoreTimeout bounds the wait for the store's lock (default 1s).
	StoreTimeout time.Duration
	// Notifier replaces the configured alert channel (the demo prints to the console).
	Notifier notify.Notifier
	// Progress shows artifact downloads when the CLI runs a deploy itself (a terminal).
	Progress io.Writer
	// noSync skips fsync in the store: the year-long simulation only.
	noSync bool
	// Reload makes a serving daemon reload its configuration each time it receives
	// (the CLI's daemon command sends SIGHUP here).
	Reload <-chan struct{}
}

// App is an assembled patchctl.
type App struct {
	conf    atomic.Pointer[config.Config] // replaced as a whole by Reload
	log     *slog.Logger
	now     func() time.Time
	store   *store.Store
	reg     *metrics.Registry
	methods map[string]method
	starts  map[string]starter // methods that run as operations
	// upload stores a binary a client sent into the artifact cache (set by the rollout).
	upload  func(ctx context.Context, r io.Reader, sum, version string) (artifact.Artifact, error)
	ops     *Runner
	started time.Time

	mu        sync.Mutex
	jobs      []job // scheduled by the daemon
	cron      *cron.Cron
	entries   map[cron.EntryID]string // cron entry → job name, for next-run times
	runCtx    context.Context         // cancelled when the daemon stops; jobs run under it
	loops     []func(ctx context.Context)
	reloaders []reloader
	reload    <-chan struct{}
	reloadMu  sync.Mutex // one reload at a time
	notifier  notify.Notifier
	progress  io.Writer
	inv       atomic.Pointer[inventory.Inventory] // nil without an inventory file
	fleet     *fleet                              // the inventory's last pass, per host
	patch     *patching.Scheduler                 // the patch-window scheduler
	kick      chan struct{}                       // wakes the outbox dispatcher
	closers   []func() error
	listener  string // socket the daemon serves, once serving
	// running counts jobs, loops and calls in progress: the store closes after them.
	running runGroup

	deployer  *rollout.Rollout // per-host deploys and rollbacks
	artifacts *artifact.Cache
	rollouts  *waves.Engine // fleet rollouts
}

// config is the configuration in force (Reload replaces it).
func (a *App) config() *config.Config { return a.conf.Load() }

// inventory is the inventory in force, nil without an inventory file.
func (a *App) inventory() *inventory.Inventory { return a.inv.Load() }

// Open opens the store and builds every component. It fails with store.ErrLocked when
// another process (normally the daemon) holds the store.
func Open(ctx context.Context, cfg *config.Config, opts Options) (*App, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	st, err := store.Open(ctx, cfg.StorePath(), store.Options{Timeout: opts.StoreTimeout, Now: opts.Now, NoSync: opts.noSync})
	if err != nil {
		return nil, err
	}
	a := &App{
		log:      opts.Logger,
		now:      opts.Now,
		store:    st,
		reg:      metrics.NewRegistry(),
		methods:  map[string]method{},
		starts:   map[string]starter{},
		ops:      NewRunner(opts.Logger.With("component", "ops"), opts.Now),
		started:  opts.Now(),
		notifier: opts.Notifier,
		progress: opts.Progress,
		reload:   opts.Reload,
	}
	a.conf.Store(cfg)
	a.reg.MustRegister(metrics.GoCollector{}, metrics.ProcessCollector{})
	for _, setup := range components {
		if err := setup(ctx, a); err != nil {
			a.Close()
			return nil, err
		}
	}
	return a, nil
}

// components build the parts of an App in order; each registers its methods and jobs.
var components = []func(ctx context.Context, a *App) error{
	setupCore,
	setupOps,
	setupNotify,
	setupTracker,
	setupInventory,
	setupRollout,
	setupRollouts,
	setupRetention,
	setupWindows,
	setupReload,
}

// Close releases the store and whatever components hold, once running jobs, loops and
// calls have returned (a stopping daemon has cancelled their context).
func (a *App) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.config().Shutdown)
	a.ops.Shutdown(ctx)
	cancel()
	a.running.wait(context.Background())
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	errs = append(errs, a.store.Close())
	return errors.Join(errs...)
}

// Store exposes the store to tests and to in-process callers.
func (a *App) Store() *store.Store { return a.store }

// Registry is the metrics registry.
func (a *App) Registry() *metrics.Registry { return a.reg }

// method is one API call: JSON arguments in, a JSON-encodable result out.
type method func(ctx context.Context, args json.RawMessage) (any, error)

// handle registers a typed method.
func handle[A any](a *App, name string, fn func(ctx context.Context, args A) (any, error)) {
	a.methods[name] = func(ctx context.Context, raw json.RawMessage) (any, error) {
		args, err := decodeArgs[A](name, raw)
		if err != nil {
			return nil, err
		}
		return fn(ctx, args)
	}
}

// decodeArgs decodes a method's arguments strictly: an unknown field is an error (a CLI
// newer than its daemon must not have arguments silently dropped), and so is trailing data.
func decodeArgs[A any](name string, raw json.RawMessage) (A, error) {
	var args A
	if len(raw) == 0 || string(raw) == "null" {
		return args, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(&args)
	if err == nil && dec.More() {
		err = errors.New("data after the arguments")
	}
	if err != nil {
		return args, &Error{Kind: KindUsage, Msg: fmt.Sprintf("bad arguments for %s: %v", name, err)}
	}
	return args, nil
}

// starter accepts an operation: it checks the arguments on the caller's request, then
// hands the work to the runner.
type starter func(ctx context.Context, raw json.RawMessage) (*Op, error)

// handleOp registers a method that runs as an operation of the daemon. accept checks the
// arguments and returns the hosts the operation holds and its work; the work runs on the
// runner's context, so it ends as it would have whatever happens to the caller, and the
// store stays open until it has. Called as a plain method, it waits for the end and
// returns the work's result.
func handleOp[A any](a *App, name string, accept func(ctx context.Context, args A) (hosts []string, run func(ctx context.Context, op *Op) (any, error), err error)) {
	a.starts[name] = func(ctx context.Context, raw json.RawMessage) (*Op, error) {
		args, err := decodeArgs[A](name, raw)
		if err != nil {
			return nil, err
		}
		hosts, run, err := accept(ctx, args)
		if err != nil {
			return nil, err
		}
		return a.ops.Start(name, hosts, callerOf(ctx).String(), func(ctx context.Context, op *Op) (any, error) {
			done, ok := a.running.add(ctx)
			if !ok {
				return nil, ctx.Err()
			}
			defer done()
			return run(ctx, op)
		})
	}
	a.methods[name] = func(ctx context.Context, raw json.RawMessage) (any, error) {
		o, err := a.starts[name](ctx, raw)
		if err != nil {
			return nil, err
		}
		select {
		case <-o.Done():
		case <-ctx.Done():
			return nil, fmt.Errorf("operation %s goes on in the daemon: %w", o.ID(), ctx.Err())
		}
		evs, _, _ := o.Events(0)
		done := evs[len(evs)-1]
		if done.Error != nil {
			return nil, done.Error
		}
		return done.Result, nil
	}
}

// Start accepts an operation in this process (the daemon, or a CLI without one) and
// returns it running.
func (a *App) Start(ctx context.Context, name string, args json.RawMessage) (*Op, error) {
	s, ok := a.starts[name]
	if !ok {
		if _, plain := a.methods[name]; plain {
			return nil, &Error{Kind: KindUsage, Msg: fmt.Sprintf("%s is not an operation", name)}
		}
		return nil, &Error{Kind: KindUsage, Msg: fmt.Sprintf("unknown method %q", name)}
	}
	if err := a.checkAccess(name, callerOf(ctx)); err != nil {
		return nil, err
	}
	return s(ctx, args)
}

// Ops is the operation runner.
func (a *App) Ops() *Runner { return a.ops }

// runGroup counts what runs (jobs, loops, calls) so the store is closed only after them.
// Unlike a WaitGroup it may gain members while someone waits.
type runGroup struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0; nil while n is 0
}

// add counts one more runner unless ctx is already done; done must be called once.
func (g *runGroup) add(ctx context.Context) (done func(), ok bool) {
	if ctx.Err() != nil {
		return nil, false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == 0 {
		g.idle = make(chan struct{})
	}
	g.n++
	return sync.OnceFunc(func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.n--; g.n == 0 {
			close(g.idle)
			g.idle = nil
		}
	}), true
}

// wait returns true once nothing runs, false if ctx ends first.
func (g *runGroup) wait(ctx context.Context) bool {
	g.mu.Lock()
	idle := g.idle
	g.mu.Unlock()
	if idle == nil {
		return true
	}
	select {
	case <-idle:
		return true
	case <-ctx.Done():
		return false
	}
}

// Call runs a method in this process and returns its JSON result, exactly as the daemon
// would return it over the socket.
func (a *App) Call(ctx context.Context, name string, args json.RawMessage) (json.RawMessage, error) {
	m, ok := a.methods[name]
	if !ok {
		return nil, &Error{Kind: KindUsage, Msg: fmt.Sprintf("unknown method %q", name)}
	}
	if err := a.checkAccess(name, callerOf(ctx)); err != nil {
		return nil, err
	}
	done, ok := a.running.add(ctx)
	if !ok {
		return nil, ctx.Err()
	}
	defer done()
	res, err := m(ctx, args)
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encode %s result: %w", name, err)
	}
	return out, nil
}

// Error kinds carried across the socket, so the CLI exits the same way whether the daemon
// or the CLI itself ran the method.
const (
	KindUsage       = "usage"
	KindFailed      = "failed"
	KindUnavailable = "unavailable"
	KindDenied      = "denied" // the caller may not call this method
)

// Error is a method failure with a kind.
type Error struct {
	Kind string `json:"kind"`
	Msg  string `json:"error"`
}

func (e *Error) Error() string { return e.Msg }

// job is a scheduled task of the daemon.
type job struct {
	name     string
	schedule string // cron spec; "" = not scheduled (e.g. no inventory file)
	jitter   time.Duration
	atStart  bool // also run once as soon as the daemon starts, without jitter
	run      func(ctx context.Context) error
	wrapped  cron.Job // run on cron ticks: skips a tick while the previous run goes on
}

func (a *App) addJob(j job) { a.jobs = append(a.jobs, j) }

// setSchedule changes a job's schedule (a reload); the daemon reschedules afterwards.
// Callers hold a.mu.
func (a *App) setSchedule(name, schedule string, jitter time.Duration) {
	for i := range a.jobs {
		if a.jobs[i].name == name {
			a.jobs[i].schedule, a.jobs[i].jitter = schedule, jitter
		}
	}
}

// Status is what `patchctl status` shows about the daemon and the store.
type Status struct {
	Version     string            `json:"version"`
	Daemon      bool              `json:"daemon"`
	Started     time.Time         `json:"started"`
	Store       string            `json:"store"`
	Config      string            `json:"config,omitempty"`
	Schema      uint64            `json:"schema"`
	Socket      string            `json:"socket,omitempty"`
	Polls       []store.PollState `json:"polls"`
	OutboxDepth int               `json:"outbox_depth"`
	// Undelivered are alerts delivery was abandoned for (max_attempts or a permanent
	// refusal): `patchctl notify retry` sends them again.
	Undelivered []Undelivered     `json:"undelivered"`
	StoreBytes  int64             `json:"store_bytes"`
	NextRuns    map[string]string `json:"next_runs,omitempty"`
}

// Undelivered is an alert that was given up on.
type Undelivered struct {
	ID        uint64    `json:"id"`
	Key       string    `json:"key"`
	Headline  string    `json:"headline,omitempty"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	GaveUpAt  time.Time `json:"gave_up_at"`
}

func setupCore(_ context.Context, a *App) error {
	handle(a, "status", func(ctx context.Context, _ struct{}) (any, error) {
		st := Status{Version: Version, Started: a.started, Store: a.store.Path(), Config: a.config().File}
		a.mu.Lock()
		st.Socket = a.listener
		st.Daemon = a.listener != ""
		a.mu.Unlock()
		if st.Daemon {
			st.NextRuns = a.nextRuns()
		}
		var err error
		if st.Schema, err = a.store.Schema(ctx); err != nil {
			return nil, err
		}
		err = a.store.View(ctx, func(tx *store.Tx) error {
			if st.Polls, err = tx.PollStates(); err != nil {
				return err
			}
			if st.OutboxDepth, _, err = tx.OutboxCounts(); err != nil {
				return err
			}
			st.StoreBytes = tx.Size()
			items, err := tx.Undelivered()
			st.Undelivered = make([]Undelivered, 0, len(items))
			for _, it := range items {
				u := Undelivered{ID: it.ID, Key: it.Key, Attempts: it.Attempts, LastError: it.LastError, GaveUpAt: it.GaveUpAt}
				if m, err := notify.Render(it.Payload); err == nil {
					u.Headline = m.Headline()
				}
				st.Undelivered = append(st.Undelivered, u)
			}
			return err
		})
		return st, err
	})
	handle(a, "events", func(ctx context.Context, f store.EventFilter) (any, error) {
		var evs []store.Event
		err := a.store.View(ctx, func(tx *store.Tx) (err error) {
			evs, err = tx.Events(f)
			return err
		})
		return evs, err
	})
	return nil
}
