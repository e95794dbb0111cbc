package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/patchctl/patchctl/app"
	"github.com/patchctl/patchctl/artifact"
	"github.com/patchctl/patchctl/rollout"
)

type deployCmd struct {
	env    *Env
	args   app.DeployArgs
	binary string
	detach bool
}

func newDeployCmd(env *Env, fs *flag.FlagSet) Command {
	c := &deployCmd{env: env}
	fs.StringVar(&c.args.Host, "host", "", "inventory `host` to deploy to (required)")
	fs.StringVar(&c.args.Version, "version", "", "nutcracker `version` to install (required)")
	fs.StringVar(&c.binary, "binary", "", "deploy this local nutcracker `file` instead of the configured artifact sources (the CLI reads it and sends its content)")
	fs.BoolVar(&c.args.DryRun, "dry-run", false, "fetch and verify the build into patchctl's cache, run its -V, read the host's state and print the plan; change nothing on the host")
	durationFlag(fs, &c.args.SmokeTimeout, "smoke-timeout", 0, 0, 10*time.Minute, "`bound` on each smoke test; 0 = the host's deploy.smoke_timeout, else 10s")
	detachFlag(fs, &c.detach)
	return c
}

func (c *deployCmd) Run(ctx context.Context) error {
	if c.args.Host == "" {
		return usagef("--host is required")
	}
	if c.args.Version == "" {
		return usagef("--version is required")
	}
	if err := artifact.ValidVersion(c.args.Version); err != nil {
		return usagef("--version: %w", err)
	}
	if c.binary != "" {
		if err := c.upload(ctx); err != nil {
			return err
		}
	}
	return c.env.runOp(ctx, "deploy", c.args, c.detach)
}

// upload sends --binary's content to where the deploy runs; a dry run sends only its
// digest, so nothing is written.
func (c *deployCmd) upload(ctx context.Context) error {
	if c.args.Version == "" {
		return usagef("--version is required")
	}
	sum, err := app.FileSHA256(c.binary)
	if err != nil {
		return usagef("--binary: %v", err)
	}
	c.args.BinarySHA256 = sum
	if c.args.DryRun {
		return nil
	}
	cfg, err := c.env.Config()
	if err != nil {
		return err
	}
	return c.env.apiError(app.UploadBinary(ctx, cfg, app.Options{Logger: c.env.Logger()}, c.binary, sum, c.args.Version))
}

type rollbackCmd struct {
	env     *Env
	args    app.RollbackArgs
	detach  bool
	rollout string
}

func newRollbackCmd(env *Env, fs *flag.FlagSet) Command {
	c := &rollbackCmd{env: env}
	fs.StringVar(&c.args.Host, "host", "", "inventory `host` to roll back (required)")
	fs.StringVar(&c.args.To, "to", "", "a `version` or slot to go back to (default: the previous good build)")
	fs.StringVar(&c.rollout, "rollout", "", "put every host of this rollout `ID` back on what it ran before")
	detachFlag(fs, &c.detach)
	return c
}

func (c *rollbackCmd) Run(ctx context.Context) error {
	if c.rollout != "" {
		if c.args.Host != "" || c.args.To != "" {
			return usagef("--rollout takes no --host or --to")
		}
		return (&rolloutControlCmd{env: c.env, method: "rollout.rollback", args: app.RolloutArgs{ID: c.rollout}}).Run(ctx)
	}
	if c.args.Host == "" {
		return usagef("--host (or --rollout) is required")
	}
	return c.env.runOp(ctx, "rollback", c.args, c.detach)
}

type adoptCmd struct {
	env    *Env
	args   app.HostArgs
	detach bool
}

func newAdoptCmd(env *Env, fs *flag.FlagSet) Command {
	c := &adoptCmd{env: env}
	fs.StringVar(&c.args.Host, "host", "", "inventory `host` whose running nutcracker to adopt (required)")
	detachFlag(fs, &c.detach)
	return c
}

func (c *adoptCmd) Run(ctx context.Context) error {
	if c.args.Host == "" {
		return usagef("--host is required")
	}
	return c.env.runOp(ctx, "adopt", c.args, c.detach)
}

// showOp prints an operation's outcome, with its steps unless they were streamed; a
// failed operation exits 1.
func (e *Env) showOp(rep app.OpReply, streamed bool) error {
	op := rep.Operation
	if err := e.emit(rep, func(w io.Writer) {
		switch {
		case len(rep.Plan) > 0:
			fmt.Fprintln(w, "dry run; would:")
			for i, s := range rep.Plan {
				fmt.Fprintf(w, "  %d. %s\n", i+1, s)
			}
			return
		case rep.Unchanged:
			fmt.Fprintf(w, "%s already runs and serves %s: nothing to do\n", op.Host, op.ToVersion)
			return
		}
		fmt.Fprintf(w, "%s %s on %s: %s → %s: %s\n", op.Kind, op.ID, op.Host, dash(op.FromVersion), op.ToVersion, op.State)
		if op.ProxyDown {
			fmt.Fprintf(w, "no nutcracker answered on %s's stats port when the %s began\n", op.Host, op.Kind)
		}
		if !streamed {
			writeSteps(w, op.Steps)
		}
		if len(rep.Pruned) > 0 {
			fmt.Fprintf(w, "removed old slots: %s\n", strings.Join(rep.Pruned, ", "))
		}
	}); err != nil {
		return err
	}
	if rep.Error != "" {
		fmt.Fprintf(e.Err, "%s\n", rep.Error)
		return errFailed
	}
	return nil
}

func writeSteps(w io.Writer, steps []rollout.StepRecord) {
	row(w, "  STEP", "AT", "AFTER", "ERROR")
	for i, s := range steps {
		after := "-"
		if i > 0 {
			after = "+" + s.Time.Sub(steps[i-1].Time).Round(time.Millisecond).String()
		}
		row(w, "  "+string(s.Step), s.Time.UTC().Format("15:04:05.000"), after, s.Error)
	}
}

func dash(s string) string {
	if s == "" {
		return "(nothing)"
	}
	return s
}

// hostFlag registers the --host flag every per-host command takes.
func hostFlag(fs *flag.FlagSet, dst *string) {
	fs.StringVar(dst, "host", "", "inventory `host` (required)")
}

func needHost(a app.HostArgs) error {
	if a.Host == "" {
		return fmt.Errorf("--host is required")
	}
	return nil
}

func newHistoryCmd(env *Env, fs *flag.FlagSet) Command {
	q := &query[app.HostArgs, []rollout.Operation]{env: env, method: "history", required: needHost, table: historyTable}
	hostFlag(fs, &q.args.Host)
	return q
}

func historyTable(w io.Writer, args app.HostArgs, ops []rollout.Operation) {
	if len(ops) == 0 {
		fmt.Fprintf(w, "no deploy or rollback recorded for %s\n", args.Host)
		return
	}
	for _, op := range ops {
		fmt.Fprintf(w, "%s  %s %s: %s → %s: %s %s\n", cell(op.Started), op.Kind, op.ID, dash(op.FromVersion), op.ToVersion, op.State, op.Error)
		writeSteps(w, op.Steps)
	}
}

func newSlotsCmd(env *Env, fs *flag.FlagSet) Command {
	q := &query[app.HostArgs, rollout.HostState]{env: env, method: "slots", required: needHost, table: slotsTable}
	hostFlag(fs, &q.args.Host)
	return q
}

func slotsTable(w io.Writer, _ app.HostArgs, st rollout.HostState) {
	row(w, "SLOT", "VERSION", "STATE", "INSTALLED", "LAST ACTIVE", "ACTIVE")
	for _, s := range st.Slots {
		active := ""
		if s.Name == st.Current {
			active = "*"
		}
		row(w, s.Name, s.Version, string(s.State), s.Installed, s.LastActive, active)
	}
}

// progressFile is where download progress goes when stderr is a terminal.
func (e *Env) progressFile() *os.File {
	if f, ok := e.Err.(*os.File); ok {
		return f
	}
	return nil
}
