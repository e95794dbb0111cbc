package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/patchctl/patchctl/app"
	"github.com/patchctl/patchctl/inventory"
	"github.com/patchctl/patchctl/store"
)

// commands is every subcommand; help and completion are generated from it.
var commands []spec

func init() {
	// Assigned in init because help and completion read the table they belong to.
	commands = []spec{
		{name: "daemon", synopsis: "run the daemon: scheduled polls, alerts, API socket, metrics",
			build: func(env *Env, fs *flag.FlagSet) Command { return &daemonCmd{env: env} }},
		{name: "reload", synopsis: "make the daemon re-read patchctl.yml and the inventory (as SIGHUP does); a bad file changes nothing",
			build: func(env *Env, fs *flag.FlagSet) Command { return &reloadCmd{env: env} }},
		{name: "status", synopsis: "show the daemon, the store and the latest polls",
			build: func(env *Env, fs *flag.FlagSet) Command { return &statusCmd{env: env} }},
		{name: "events", synopsis: "show the event log: what happened, when, why",
			build: newEventsCmd},
		{name: "notify test", synopsis: "send a test alert through the configured channel (Slack or the log)",
			build: func(env *Env, fs *flag.FlagSet) Command { return &notifyTestCmd{env: env} }},
		{name: "version", synopsis: "print patchctl's version",
			build: func(env *Env, fs *flag.FlagSet) Command { return &versionCmd{env: env} }},
		{name: "completion", args: "bash|zsh|fish", synopsis: "print a shell completion script",
			build: func(env *Env, fs *flag.FlagSet) Command { return &completionCmd{env: env} }},
		{name: "help", args: "[COMMAND]", synopsis: "show help for patchctl or a command",
			build: func(env *Env, fs *flag.FlagSet) Command { return &helpCmd{env: env} }},
	}
}

// call runs an API method in the daemon, or locally when no daemon runs.
func (e *Env) call(ctx context.Context, method string, args, result any) error {
	return e.callWith(ctx, app.Options{}, method, args, result)
}

func (e *Env) callWith(ctx context.Context, opts app.Options, method string, args, result any) error {
	cfg, err := e.Config()
	if err != nil {
		return err
	}
	opts.Logger = e.Logger()
	return e.apiError(app.Do(ctx, cfg, opts, method, args, result))
}

var errNoDaemon = app.ErrNoDaemon

type daemonCmd struct{ env *Env }

func (c *daemonCmd) Run(ctx context.Context) error {
	cfg, err := c.env.Config()
	if err != nil {
		return err
	}
	log := c.env.Logger()
	// SIGHUP reloads the configuration, as `patchctl reload` does.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-hup:
				select {
				case reload <- struct{}{}:
				default: // one is already waiting
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	a, err := app.Open(ctx, cfg, app.Options{Logger: log, Reload: reload})
	if ae := (*app.Error)(nil); errors.As(err, &ae) && ae.Kind == app.KindUsage {
		return usageErr(err) // the configuration contradicts the store (a pinned version it does not know)
	}
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Serve(ctx, nil)
}

type reloadCmd struct{ env *Env }

func (c *reloadCmd) Run(ctx context.Context) error {
	cfg, err := c.env.Config()
	if err != nil {
		return err
	}
	var res app.ReloadResult
	if err := app.NewClient(cfg.Socket).Call(ctx, "reload", nil, &res); err != nil {
		return err
	}
	return c.env.emit(res, func(w io.Writer) {
		fmt.Fprintf(w, "reloaded %s", res.Config)
		if res.Inventory != "" {
			fmt.Fprintf(w, " and %s (%d hosts)", res.Inventory, res.Hosts)
		}
		fmt.Fprintln(w)
	})
}

type statusCmd struct{ env *Env }

// statusView is the status of the daemon plus the fleet's per-environment counts.
type statusView struct {
	app.Status
	Fleet []inventory.EnvironmentSummary `json:"fleet"`
}

func (c *statusCmd) Run(ctx context.Context) error {
	var st statusView
	if err := c.env.call(ctx, "status", nil, &st.Status); err != nil {
		return err
	}
	var fleet app.FleetReport
	if err := c.env.call(ctx, "inventory", nil, &fleet); err != nil {
		return err
	}
	st.Fleet = fleet.Environments
	return c.env.emit(st, func(w io.Writer) {
		mode := "not running (read the store directly)"
		if st.Daemon {
			mode = "running, socket " + st.Socket
		}
		row(w, "patchctl", st.Version)
		row(w, "daemon", mode)
		row(w, "store", fmt.Sprintf("%s (schema %d)", st.Store, st.Schema))
		row(w, "outbox", fmt.Sprintf("%d pending", st.OutboxDepth))
		names := make([]string, 0, len(st.NextRuns))
		for n := range st.NextRuns {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			row(w, "next "+n, st.NextRuns[n])
		}
		for _, p := range st.Polls {
			outcome := p.LastOutcome
			if p.LastError != "" {
				outcome += ": " + p.LastError
			}
			row(w, "source "+p.Source, fmt.Sprintf("last poll %s, %s", cell(p.LastAttempt), outcome))
		}
		if len(st.Fleet) > 0 {
			fmt.Fprintln(w)
			writeEnvironments(w, st.Fleet)
		}
	})
}

type eventsCmd struct {
	env    *Env
	filter store.EventFilter
}

func newEventsCmd(env *Env, fs *flag.FlagSet) Command {
	c := &eventsCmd{env: env}
	fs.StringVar(&c.filter.Kind, "kind", "", "only events of this `kind`, or a prefix ending in '.' (e.g. deploy.)")
	fs.StringVar(&c.filter.Subject, "subject", "", "only events about this source or `host`")
	intFlag(fs, &c.filter.Limit, "n", 50, 0, 1_000_000, "show the newest `N` events (0 = all)")
	return c
}

func eventFilter(kind string) store.EventFilter { return store.EventFilter{Kind: kind, Limit: 50} }

func (c *eventsCmd) Run(ctx context.Context) error {
	var evs []store.Event
	if err := c.env.call(ctx, "events", c.filter, &evs); err != nil {
		return err
	}
	return c.env.emit(evs, func(w io.Writer) {
		row(w, "SEQ", "TIME", "KIND", "SUBJECT", "MESSAGE")
		for _, e := range evs {
			row(w, e.Seq, e.Time, e.Kind, e.Subject, e.Message)
		}
	})
}

type versionCmd struct{ env *Env }

func (c *versionCmd) Run(context.Context) error {
	return c.env.emit(map[string]string{"version": app.Version}, func(w io.Writer) {
		fmt.Fprintln(w, "patchctl", app.Version)
	})
}

type helpCmd struct {
	env  *Env
	args []string
}

func (c *helpCmd) SetArgs(args []string) error { c.args = args; return nil }

func (c *helpCmd) Run(context.Context) error {
	if len(c.args) == 0 {
		printUsage(c.env.Out)
		return nil
	}
	sp, _ := lookup(c.args)
	if sp == nil {
		return usagef("unknown command %q", strings.Join(c.args, " "))
	}
	fs := flag.NewFlagSet(sp.name, flag.ContinueOnError)
	fs.SetOutput(c.env.Out)
	c.env.globalFlags(fs)
	sp.build(c.env, fs)
	printCommandUsage(c.env.Out, sp, fs)
	return nil
}

type notifyTestCmd struct{ env *Env }

func (c *notifyTestCmd) Run(ctx context.Context) error {
	var res map[string]string
	if err := c.env.call(ctx, "notify.test", nil, &res); err != nil {
		return err
	}
	return c.env.emit(res, func(w io.Writer) { fmt.Fprintf(w, "test message delivered via %s\n", res["channel"]) })
}
