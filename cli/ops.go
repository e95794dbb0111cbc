package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/patchctl/patchctl/app"
	"github.com/patchctl/patchctl/artifact"
)

func detachFlag(fs *flag.FlagSet, dst *bool) {
	fs.BoolVar(dst, "detach", false, "return once the daemon accepted the operation and print its id (follow it with `patchctl attach ID`)")
}

// runOp starts an operation and follows it: each step is printed as it happens, then the
// outcome. Interrupting the CLI leaves a daemon's operation running.
func (e *Env) runOp(ctx context.Context, method string, args any, detach bool) error {
	cfg, err := e.Config()
	if err != nil {
		return err
	}
	opts := app.Options{Logger: e.Logger()}
	if f := e.progressFile(); f != nil {
		if w := artifact.ProgressOutput(f); w != nil {
			opts.Progress = w // shown when the CLI runs the operation itself
		}
	}
	var id string
	last, err := app.StartOp(ctx, cfg, opts, method, args, detach, func(ev app.OpEvent) {
		id = ev.Op
		e.showEvent(ev)
	})
	if err != nil {
		if id != "" && errors.Is(err, context.Canceled) {
			return fmt.Errorf("stopped following %s; it goes on in the daemon: `patchctl attach %s` to follow it, `patchctl abort %s` to abort it", id, id, id)
		}
		return e.apiError(err)
	}
	if detach {
		if e.Output == "json" {
			return e.emit(last, nil)
		}
		fmt.Fprintf(e.Out, "%s accepted: %s\nfollow it: patchctl attach %s\nabort it:  patchctl abort %s\n", last.Op, last.Message, last.Op, last.Op)
		return nil
	}
	return e.showDone(last)
}

// showEvent prints one event of an operation as it happens (text output only).
func (e *Env) showEvent(ev app.OpEvent) {
	if e.Output == "json" {
		return
	}
	at := ev.Time.UTC().Format("15:04:05.000")
	switch ev.Type {
	case app.EventAccepted:
		fmt.Fprintf(e.Out, "%s  %s accepted: %s (asked by %s)\n", at, ev.Op, ev.Message, ev.By)
	case app.EventStep:
		fmt.Fprintf(e.Out, "%s  %s  %-16s %s\n", at, ev.Host, ev.Step, ev.Message)
	case app.EventInfo:
		if ev.By != "" {
			fmt.Fprintf(e.Out, "%s  %s (by %s)\n", at, ev.Message, ev.By)
			return
		}
		fmt.Fprintf(e.Out, "%s  %s  %-16s %s\n", at, ev.Host, ev.Step, ev.Message)
	}
}

// showDone prints an operation's outcome; exit 0 when it succeeded, 1 when it failed or
// rolled back.
func (e *Env) showDone(done app.OpEvent) error {
	if done.Error != nil {
		return e.apiError(done.Error)
	}
	var rep app.OpReply
	if err := json.Unmarshal(done.Result, &rep); err == nil && rep.Operation.Kind != "" {
		return e.showOp(rep, e.Output != "json")
	}
	if err := e.emit(done.Result, func(w io.Writer) { fmt.Fprintf(w, "%s: %s\n", done.Op, done.State) }); err != nil {
		return err
	}
	if done.State != app.OpSucceeded {
		return errFailed
	}
	return nil
}

// apiError maps the kind of a method's or an operation's error to an exit code.
func (e *Env) apiError(err error) error {
	var ae *app.Error
	if errors.As(err, &ae) {
		switch ae.Kind {
		case app.KindUsage:
			return usageErr(ae)
		case app.KindUnavailable:
			return fmt.Errorf("%w: %s", errNoDaemon, ae.Msg)
		}
	}
	return err
}

// opCmd is a command on one operation named by its only argument.
type opCmd struct {
	env *Env
	id  string
}

func (c *opCmd) SetArgs(args []string) error {
	if len(args) != 1 {
		return errors.New("want one operation id (see `patchctl ops`)")
	}
	c.id = args[0]
	return nil
}

type attachCmd struct{ opCmd }

func newAttachCmd(env *Env, _ *flag.FlagSet) Command { return &attachCmd{opCmd{env: env}} }

func (c *attachCmd) Run(ctx context.Context) error {
	cfg, err := c.env.Config()
	if err != nil {
		return err
	}
	done, err := app.AttachOp(ctx, cfg, c.id, c.env.showEvent)
	if err != nil {
		return c.env.apiError(err)
	}
	return c.env.showDone(done)
}

type abortCmd struct{ opCmd }

func newAbortCmd(env *Env, _ *flag.FlagSet) Command { return &abortCmd{opCmd{env: env}} }

// Run asks the daemon to abort, then follows the operation to its end (a deploy rolls
// back first). It exits 0 once the operation has ended because of the abort.
func (c *abortCmd) Run(ctx context.Context) error {
	cfg, err := c.env.Config()
	if err != nil {
		return err
	}
	var info app.OpInfo
	if err := app.NewClient(cfg.Socket).Call(ctx, "abort", app.OpArgs{ID: c.id}, &info); err != nil {
		return c.env.apiError(err)
	}
	done, err := app.AttachOp(ctx, cfg, c.id, c.env.showEvent)
	if err != nil {
		return c.env.apiError(err)
	}
	if err := c.env.showDone(done); err != nil && !errors.Is(err, errFailed) {
		return err
	}
	return nil
}

func newOpsCmd(env *Env, _ *flag.FlagSet) Command {
	return &query[struct{}, []app.OpInfo]{env: env, method: "ops", table: opsTable}
}

func opsTable(w io.Writer, _ struct{}, ops []app.OpInfo) {
	if len(ops) == 0 {
		fmt.Fprintln(w, "no operation since the daemon started")
		return
	}
	row(w, "ID", "KIND", "HOSTS", "BY", "STATE", "STARTED", "TOOK")
	for _, o := range ops {
		took := "-"
		if !o.Finished.IsZero() {
			took = o.Finished.Sub(o.Started).Round(time.Millisecond).String()
		}
		row(w, o.ID, o.Kind, strings.Join(o.Hosts, ","), o.By, o.State, o.Started, took)
	}
}
