package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/patchctl/patchctl/artifact"
	"github.com/patchctl/patchctl/inventory"
	"github.com/patchctl/patchctl/rollout"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/transport"
)

// DeployArgs are the arguments of deploy.
type DeployArgs struct {
	Host    string `json:"host"`
	Version string `json:"version"`
	// BinarySHA256 deploys a binary the client uploaded (its content: the daemon never
	// opens a path a client names) instead of resolving Version from the configured
	// artifact sources; it must still report Version. A dry run needs no upload.
	BinarySHA256 string        `json:"binary_sha256,omitempty"`
	DryRun       bool          `json:"dry_run,omitempty"`
	SmokeTimeout time.Duration `json:"smoke_timeout,omitempty"`
}

// RollbackArgs are the arguments of rollback.
type RollbackArgs struct {
	Host string `json:"host"`
	To   string `json:"to,omitempty"` // a version or slot; "" = the previous good build
}

// HostArgs name one host.
type HostArgs struct {
	Host string `json:"host"`
}

// OpReply is the outcome of a deploy or rollback. A failed operation is still a reply, so
// the CLI can show every recorded step; Error says why it failed.
type OpReply struct {
	rollout.Result
	Artifact *artifact.Artifact `json:"artifact,omitempty"`
	Error    string             `json:"error,omitempty"`
}

func setupRollout(_ context.Context, a *App) error {
	r := rollout.New(a.store, rollout.Options{Logger: a.log.With("component", "rollout"), Now: a.now, OnStep: a.streamStep})
	cache := artifact.New(a.config().Artifacts.Dir, a.log.With("component", "artifact"))
	a.deployer, a.artifacts = r, cache

	a.upload = func(ctx context.Context, r io.Reader, sum, version string) (artifact.Artifact, error) {
		art, err := cache.Ingest(ctx, r, sum, version)
		if err != nil {
			return art, &Error{Kind: KindFailed, Msg: "upload: " + err.Error()}
		}
		return art, nil
	}
	handleOp(a, "deploy", func(ctx context.Context, args DeployArgs) ([]string, func(context.Context, *Op) (any, error), error) {
		if args.Version == "" {
			return nil, nil, &Error{Kind: KindUsage, Msg: "--version is required"}
		}
		if err := a.refuseLeased(ctx, args.Host, args.DryRun); err != nil {
			return nil, nil, err
		}
		return a.hostOp(args.Host, func(ctx context.Context, op *Op, spec rollout.HostSpec) (any, error) {
			op.Emit(OpEvent{Type: EventStep, Host: args.Host, Step: "resolve", Message: "nutcracker " + args.Version})
			art, err := a.deployArtifact(ctx, cache, args)
			if err != nil {
				return nil, err
			}
			opts := rollout.DeployOptions{DryRun: args.DryRun, SmokeTimeout: args.SmokeTimeout}
			var restore func()
			if !args.DryRun {
				// The inventory must not report the coming version change as unexpected.
				if restore, err = a.expectVersion(ctx, args.Host, args.Version); err != nil {
					return nil, err
				}
			}
			res, err := r.Deploy(ctx, spec, rollout.Artifact{Path: art.Path, Version: art.Version, SHA256: art.SHA256}, opts)
			if restore != nil && (err != nil || (res.Operation.State != rollout.OpSucceeded && !res.Unchanged)) {
				restore()
			}
			a.wake()
			return opReply(res, &art, err)
		})
	})
	handleOp(a, "rollback", func(ctx context.Context, args RollbackArgs) ([]string, func(context.Context, *Op) (any, error), error) {
		if err := a.refuseLeased(ctx, args.Host, false); err != nil {
			return nil, nil, err
		}
		return a.hostOp(args.Host, func(ctx context.Context, _ *Op, spec rollout.HostSpec) (any, error) {
			res, err := r.Rollback(ctx, spec, args.To)
			if err == nil {
				err = a.store.Update(ctx, func(tx *store.Tx) error {
					return tx.PutHost(HostExpectedVersion, args.Host, res.Operation.ToVersion)
				})
			}
			a.wake()
			return opReply(res, nil, err)
		})
	})
	handleOp(a, "adopt", func(ctx context.Context, args HostArgs) ([]string, func(context.Context, *Op) (any, error), error) {
		return a.hostOp(args.Host, func(ctx context.Context, _ *Op, spec rollout.HostSpec) (any, error) {
			res, err := r.Adopt(ctx, spec)
			a.wake()
			return opReply(res, nil, err)
		})
	})
	handle(a, "history", func(ctx context.Context, args HostArgs) (any, error) {
		if err := a.knownHost(args.Host); err != nil {
			return nil, err
		}
		return r.History(ctx, args.Host)
	})
	handle(a, "slots", func(ctx context.Context, args HostArgs) (any, error) {
		if err := a.knownHost(args.Host); err != nil {
			return nil, err
		}
		return r.Slots(ctx, args.Host)
	})

	// A deploy interrupted by a crash is finished or undone as soon as the daemon is back,
	// not only when someone next touches the host.
	a.addLoop(func(ctx context.Context) {
		ctx = store.WithActor(ctx, "the daemon (recovery of an interrupted operation)")
		inv := a.inventory()
		if inv == nil {
			return
		}
		for _, h := range inv.Hosts {
			if h.Deploy == nil || ctx.Err() != nil {
				continue
			}
			spec, closeT, err := a.hostSpec(ctx, h.Name)
			if err != nil {
				a.log.Warn("cannot check for an interrupted operation", "host", h.Name, "err", err)
				continue
			}
			if res, ok, err := r.Recover(ctx, spec); err != nil {
				a.log.Error("recovering an interrupted operation failed", "host", h.Name, "err", err)
			} else if ok {
				a.log.Warn("recovered an interrupted operation", "host", h.Name, "op", res.Operation.ID, "state", res.Operation.State)
			}
			closeT()
		}
	})
	return nil
}

// outcome is the end state of the operation the reply reports.
func (r OpReply) outcome() string {
	switch {
	case r.Error == "":
		return OpSucceeded
	case r.Operation.State == rollout.OpRolledBack:
		return OpRolledBack
	case r.Operation.State == rollout.OpAborted:
		return OpAborted
	}
	return OpFailed
}

// streamStep shows a rollout step to whoever follows the operation holding its host;
// a step that failed is shown before the next one starts.
func (a *App) streamStep(op rollout.Operation) {
	o := a.ops.OnHost(op.Host)
	if o == nil {
		return
	}
	if n := len(op.Steps); n >= 2 && op.Steps[n-2].Error != "" {
		prev := op.Steps[n-2]
		o.Emit(OpEvent{Type: EventInfo, Host: op.Host, Step: string(prev.Step), Message: "failed: " + prev.Error})
	}
	o.Emit(OpEvent{Type: EventStep, Host: op.Host, Step: string(op.Step), Message: op.Kind + " " + op.ID + " → " + op.ToVersion})
}

func opReply(res rollout.Result, art *artifact.Artifact, err error) (any, error) {
	reply := OpReply{Result: res, Artifact: art}
	switch {
	case err == nil:
		return reply, nil
	case errors.Is(err, rollout.ErrBusy), errors.Is(err, rollout.ErrRunAsRoot):
		return nil, &Error{Kind: KindFailed, Msg: err.Error()}
	case errors.Is(err, rollout.ErrUnknownSlot):
		return nil, &Error{Kind: KindUsage, Msg: err.Error()}
	case res.Operation.ID == "":
		// Nothing was started (nothing to roll back to, host unreachable, ...).
		return nil, &Error{Kind: KindFailed, Msg: err.Error()}
	}
	reply.Error = err.Error()
	return reply, nil
}

// hostOp accepts an operation on one inventory host: it refuses a host the inventory does
// not name, and runs work with the host's rollout view, its transport closed after.
func (a *App) hostOp(host string, work func(ctx context.Context, op *Op, spec rollout.HostSpec) (any, error)) ([]string, func(context.Context, *Op) (any, error), error) {
	if err := a.knownHost(host); err != nil {
		return nil, nil, err
	}
	return []string{host}, func(ctx context.Context, op *Op) (any, error) {
		spec, closeT, err := a.hostSpec(ctx, host)
		if err != nil {
			return nil, err
		}
		defer closeT()
		return work(ctx, op, spec)
	}, nil
}

func (a *App) knownHost(name string) error {
	_, err := a.inventoryHost(name)
	return err
}

// inventoryHost looks a host up in the inventory in force.
func (a *App) inventoryHost(name string) (inventory.Host, error) {
	inv := a.inventory()
	if inv == nil {
		return inventory.Host{}, &Error{Kind: KindUsage, Msg: "no inventory configured (inventory.file in patchctl.yml)"}
	}
	h, ok := inv.Host(name)
	if !ok {
		return inventory.Host{}, &Error{Kind: KindUsage, Msg: fmt.Sprintf("no host %q in %s", name, a.config().Inventory.File)}
	}
	return h, nil
}

// expectVersion records that a deploy is installing version on host, so the inventory
// does not report reaching it as unexpected. The returned func puts back what was expected
// before, for a deploy that does not end on that version: otherwise a later unexpected
// change to it would raise no alert.
func (a *App) expectVersion(ctx context.Context, host, version string) (restore func(), err error) {
	var prev string
	var had bool
	err = a.store.Update(ctx, func(tx *store.Tx) error {
		if had, err = tx.Host(HostExpectedVersion, host, &prev); err != nil {
			return err
		}
		return tx.PutHost(HostExpectedVersion, host, version)
	})
	if err != nil {
		return nil, err
	}
	return func() {
		err := a.store.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error {
			if had {
				return tx.PutHost(HostExpectedVersion, host, prev)
			}
			return tx.DeleteHost(HostExpectedVersion, host)
		})
		if err != nil {
			a.log.Error("cannot restore the expected version", "host", host, "err", err)
		}
	}, nil
}

// hostSpec builds the rollout's view of an inventory host and dials its transport; the
// returned func closes the transport.
func (a *App) hostSpec(ctx context.Context, name string) (rollout.HostSpec, func(), error) {
	h, err := a.inventoryHost(name)
	if err != nil {
		return rollout.HostSpec{}, nil, err
	}
	if h.Deploy == nil {
		return rollout.HostSpec{}, nil, &Error{Kind: KindUsage, Msg: fmt.Sprintf("host %s has no deploy settings in %s", name, a.config().Inventory.File)}
	}
	t, err := transport.Dial(ctx, *h.Transport)
	if err != nil {
		return rollout.HostSpec{}, nil, &Error{Kind: KindFailed, Msg: fmt.Sprintf("host %s: %v", name, err)}
	}
	return toHostSpec(h, t), func() { t.Close() }, nil
}

func toHostSpec(h inventory.Host, t transport.Transport) rollout.HostSpec {
	d := h.Deploy
	return rollout.HostSpec{
		Name: h.Name, Transport: t, Root: d.Root, Config: h.Config, StatsAddr: h.Stats, ProbeHost: d.ProbeHost,
		Process: rollout.Process{Mode: d.Restart, Unit: d.Unit, Start: d.Start, Stop: d.Stop, User: d.User,
			PidFile: d.PidFile, LogFile: d.LogFile, StatsInterval: d.StatsInterval, StopTimeout: d.StopTimeout},
		Keep: d.Keep, SmokeTimeout: d.SmokeTimeout,
	}
}

// unresolved stands for the digest of a build a dry run did not fetch (12 characters,
// as much of a digest as a slot name shows).
const unresolved = "(unresolved)"

// deployArtifact is the binary a deploy installs: an uploaded one, or the first verified
// build of the configured sources. A dry run fetches, writes and runs nothing: it plans
// with the uploaded binary's digest, or with none.
func (a *App) deployArtifact(ctx context.Context, cache *artifact.Cache, args DeployArgs) (artifact.Artifact, error) {
	switch {
	case args.DryRun && args.BinarySHA256 != "":
		return artifact.Artifact{Path: "the uploaded binary sha256:" + args.BinarySHA256, SHA256: args.BinarySHA256, Version: args.Version}, nil
	case args.DryRun:
		return artifact.Artifact{Path: "nutcracker " + args.Version + " from the configured artifact sources", SHA256: unresolved, Version: args.Version}, nil
	case args.BinarySHA256 != "":
		art, err := cache.Uploaded(args.BinarySHA256, args.Version)
		if err != nil {
			return art, &Error{Kind: KindUsage, Msg: err.Error() + ": upload it first (patchctl deploy --binary FILE does)"}
		}
		return art, nil
	}
	return a.resolveArtifact(ctx, cache, args.Version)
}

// resolveArtifact finds a verified binary for the version: the first configured source
// that has it.
func (a *App) resolveArtifact(ctx context.Context, cache *artifact.Cache, version string) (artifact.Artifact, error) {
	var progress io.Writer = a.progress
	sources := a.config().Artifacts.Sources
	if len(sources) == 0 {
		return artifact.Artifact{}, &Error{Kind: KindUsage, Msg: "no artifact sources configured (artifacts.sources in patchctl.yml); or pass --binary FILE"}
	}
	var errs []string
	for i, src := range sources {
		art, err := cache.Resolve(ctx, src, version, progress)
		if err == nil {
			return art, nil
		}
		if ctx.Err() != nil {
			return artifact.Artifact{}, ctx.Err()
		}
		errs = append(errs, fmt.Sprintf("source %d (%s): %v", i+1, src.Kind, err))
	}
	return artifact.Artifact{}, &Error{Kind: KindFailed, Msg: "no verified build of nutcracker " + version + ":\n  " + strings.Join(errs, "\n  ")}
}
