package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/patchctl/patchctl/app"
	"github.com/patchctl/patchctl/inventory"
	"github.com/patchctl/patchctl/store"
)

// commands is every subcommand, in the order help lists them; help, completion, the root
// warning and the JSON shape test are generated from it. It is the only place a command is
// registered: a command missing here does not exist. (Assigned in init because help and
// completion read the table they belong to.)
var commands []spec

func init() {
	commands = []spec{
		// The daemon and what it tracks.
		{name: "daemon", synopsis: "run the daemon: scheduled polls, alerts, API socket, metrics",
			build: func(env *Env, fs *flag.FlagSet) Command { return &daemonCmd{env: env} }, privileged: true},
		{name: "reload", synopsis: "make the daemon re-read patchctl.yml and the inventory (as SIGHUP does); a bad file changes nothing",
			build: func(env *Env, fs *flag.FlagSet) Command { return &reloadCmd{env: env} }},
		{name: "status", synopsis: "show the daemon, the store and the latest polls",
			build: func(env *Env, fs *flag.FlagSet) Command { return &statusCmd{env: env} }},
		{name: "poll", synopsis: "poll every release source once now, then exit",
			build: func(env *Env, fs *flag.FlagSet) Command { return &pollCmd{env: env} }},
		{name: "releases", synopsis: "list the releases and tags patchctl knows, newest version first", build: newReleasesCmd},
		{name: "advisories", synopsis: "list the security advisories patchctl knows", build: newAdvisoriesCmd},
		{name: "events", synopsis: "show the event log: what happened, when, why", build: newEventsCmd},
		{name: "notify test", synopsis: "send a test alert through the configured channel (Slack or the log)",
			build: func(env *Env, fs *flag.FlagSet) Command { return &notifyTestCmd{env: env} }},
		{name: "notify retry", args: "ID|--all", synopsis: "send undelivered alerts (shown by status) again",
			build: newNotifyRetryCmd},

		// The fleet and its hosts.
		{name: "inventory", synopsis: "show every host: running version, latest, advisories affecting it, days exposed", build: newInventoryCmd},
		{name: "deploy", synopsis: "install a nutcracker version on a host: pre-flight, switch, restart, smoke test, automatic rollback",
			build: newDeployCmd, privileged: true},
		{name: "rollback", synopsis: "switch a host back to its previous good build (or --to VERSION), or every host of a rollout (--rollout ID)",
			build: newRollbackCmd, privileged: true},
		{name: "adopt", synopsis: "record the nutcracker a host already runs as its first good build, without restarting it",
			build: newAdoptCmd, privileged: true},
		{name: "rollout plan", synopsis: "show what a fleet rollout of a version would do, host by host; touches nothing", build: newRolloutPlanCmd},
		{name: "rollout start", synopsis: "start a fleet rollout of a version in waves (run by the daemon)", build: newRolloutStartCmd, privileged: true},
		{name: "rollout status", args: "[ID]", synopsis: "show a rollout's waves and hosts (default: the newest); --watch follows it", build: newRolloutStatusCmd},
		{name: "rollout list", synopsis: "list every rollout", build: func(env *Env, fs *flag.FlagSet) Command { return &rolloutListCmd{env: env} }},
		{name: "rollout pause", args: "ID", synopsis: "stop a rollout from starting more hosts (hosts deploying finish)", build: newRolloutControl("rollout.pause", true), privileged: true},
		{name: "rollout resume", args: "ID", synopsis: "continue a paused rollout", build: newRolloutControl("rollout.resume", false), privileged: true},
		{name: "rollout promote", args: "ID", synopsis: "let a rollout waiting after a wave start the next one", build: newRolloutControl("rollout.promote", false), privileged: true},
		{name: "rollout abort", args: "ID", synopsis: "stop a rollout and roll back every host it changed, newest wave first", build: newRolloutControl("rollout.abort", true), privileged: true},
		{name: "ops", synopsis: "list the daemon's running and recent operations", build: newOpsCmd},
		{name: "attach", args: "OPERATION", synopsis: "follow a running or finished operation of the daemon (deploy, rollback, ...) to its end", build: newAttachCmd},
		{name: "abort", args: "OPERATION", synopsis: "abort a running operation on purpose: a deploy rolls back to the build that ran before",
			build: newAbortCmd, privileged: true},
		{name: "history", synopsis: "show a host's deploys and rollbacks, step by step", build: newHistoryCmd},
		{name: "slots", synopsis: "show the builds installed on a host and which one is active", build: newSlotsCmd},
		{name: "rollout approve", args: "ID", synopsis: "let a scheduled rollout whose staging passed run its production waves in the next production window",
			build: newApproveCmd, privileged: true},
		{name: "release unmark", args: "VERSION", synopsis: "let a version marked bad (its rollout failed or was aborted) be a candidate again", build: newUnmarkCmd},
		{name: "windows", synopsis: "list the coming patch windows: when (local and UTC), how long, cutoff, what each serves and would do", build: newWindowsCmd},

		// Guardrails for nutcracker.yml.
		{name: "lint", args: "FILE...", synopsis: "check nutcracker.yml files against the nutcracker version that will run them", build: newLintCmd},
		{name: "check connect", args: "FILE", synopsis: "connect to every backend of every pool and check it speaks the pool's protocol", build: newCheckConnectCmd},
		{name: "routing verify", args: "FILE", synopsis: "write probe keys through a live proxy and find each on the backend patchctl predicts", build: newRoutingVerifyCmd},
		{name: "routing diff", args: "OLD NEW", synopsis: "show the fraction of keys that move between two configurations", build: newRoutingDiffCmd},
		{name: "audit", synopsis: "check this host's nutcracker processes and configurations for least privilege", build: newAuditCmd},

		// Air-gapped sites.
		{name: "mirror serve", synopsis: "serve a directory laid out like GitHub's releases API (or twemproxy's built-in history) for daemons without internet access",
			build: newMirrorServeCmd},

		// Trying patchctl, and the CLI itself.
		{name: "demo", synopsis: "run the daemon against an embedded mirror of twemproxy's release history and a local Slack webhook", build: newDemoCmd},
		{name: "version", synopsis: "print patchctl's version",
			build: func(env *Env, fs *flag.FlagSet) Command { return &versionCmd{env: env} }},
		{name: "completion", args: "bash|zsh|fish", synopsis: "print a shell completion script",
			build: func(env *Env, fs *flag.FlagSet) Command { return &completionCmd{env: env} }},
		{name: "help", args: "[COMMAND]", synopsis: "show help for patchctl or a command",
			build: func(env *Env, fs *flag.FlagSet) Command { return &helpCmd{env: env} }},
		{name: "__complete", args: "-- WORDS...", synopsis: "print the candidates for the next word (used by the completion scripts)",
			build: func(env *Env, fs *flag.FlagSet) Command { return &completeCmd{env: env} }, hidden: true},
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
	if readOnlyMethods[method] && !exists(cfg.StorePath()) && !exists(cfg.Socket) {
		// Opening the store here would create it (and its directory, owned by whoever runs
		// this, root included), locking out the daemon's own user later. A broken inventory
		// file is still worth saying first.
		if cfg.Inventory.File != "" {
			if _, err := inventory.Load(cfg.Inventory.File); err != nil {
				return err
			}
		}
		return &noStoreError{path: cfg.StorePath()}
	}
	opts.Logger = e.Logger()
	return e.apiError(app.Do(ctx, cfg, opts, method, args, result))
}

var errNoDaemon = app.ErrNoDaemon

// readOnlyMethods only read state: without a daemon and without a store they answer that
// nothing is recorded yet instead of creating the store.
var readOnlyMethods = map[string]bool{"status": true, "inventory": true, "events": true, "releases": true,
	"advisories": true, "history": true, "slots": true, "ops": true}

// noStoreError: no daemon runs and no store exists yet.
type noStoreError struct{ path string }

func (e *noStoreError) Error() string {
	return fmt.Sprintf("nothing recorded yet: no store at %s (the daemon creates it: start 'patchctl daemon' as its own user)", e.path)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

type daemonCmd struct{ env *Env }

// daemonStoreWait bounds how long the daemon waits at start for the store's lock.
const daemonStoreWait = 30 * time.Second

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
	// A CLI command run while no daemon answers reads the store itself and holds its lock
	// for that read, which on a loaded host can last seconds: the daemon waits it out
	// rather than failing at start.
	a, err := app.Open(ctx, cfg, app.Options{Logger: log, Reload: reload, StoreTimeout: daemonStoreWait})
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

// statusView is the status of the daemon plus the fleet's per-environment counts, the next
// patch window and the scheduler's rollouts in progress.
type statusView struct {
	app.Status
	Fleet      []inventory.EnvironmentSummary `json:"fleet"`
	NextWindow *app.WindowEntry               `json:"next_window,omitempty"`
	Rollouts   []app.PatchRollout             `json:"patch_rollouts"`
}

func (c *statusCmd) Run(ctx context.Context) error {
	var st statusView
	var none *noStoreError
	switch err := c.env.call(ctx, "status", nil, &st.Status); {
	case errors.As(err, &none):
		st.Status = app.Status{Version: app.Version, Store: none.path}
	case err != nil:
		return err
	default:
		var fleet app.FleetReport
		if err := c.env.call(ctx, "inventory", nil, &fleet); err != nil {
			return err
		}
		st.Fleet = fleet.Environments
		var wins app.WindowsReport
		if err := c.env.call(ctx, "windows", app.WindowsArgs{Next: 1}, &wins); err != nil {
			return err
		}
		if len(wins.Windows) > 0 {
			st.NextWindow = &wins.Windows[0]
		}
		st.Rollouts = wins.Rollouts
	}
	return c.env.emit(st, func(w io.Writer) {
		mode := "not running (read the store directly)"
		if st.Daemon {
			mode = "running, socket " + st.Socket
		}
		row(w, "patchctl", st.Version)
		row(w, "daemon", mode)
		if none != nil {
			row(w, "store", st.Store+" (not created yet: the daemon creates it)")
		} else {
			row(w, "store", fmt.Sprintf("%s (schema %d)", st.Store, st.Schema))
		}
		row(w, "store size", fmt.Sprintf("%.1f MiB", float64(st.StoreBytes)/(1<<20)))
		outbox := fmt.Sprintf("%d pending", st.OutboxDepth)
		if n := len(st.Undelivered); n > 0 {
			outbox += fmt.Sprintf(", %d UNDELIVERED (patchctl notify retry ID|--all)", n)
		}
		row(w, "outbox", outbox)
		for _, u := range st.Undelivered {
			row(w, fmt.Sprintf("undelivered %d", u.ID), fmt.Sprintf("%s; gave up %s after %d attempts: %s", cmp.Or(u.Headline, u.Key), cell(u.GaveUpAt), u.Attempts, u.LastError))
		}
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
		if e := st.NextWindow; e != nil {
			when := "opens " + e.Opens.Format("2006-01-02 15:04 -07:00") + " " + e.TimeZone
			if e.Open {
				when = "OPEN until " + e.Closes.Format("2006-01-02 15:04 -07:00") + " " + e.TimeZone
			}
			row(w, "next window", fmt.Sprintf("%s (%s) %s: %s", e.Name, e.Kind, when, planText(e.Plan)))
		}
		for _, r := range st.Rollouts {
			row(w, "patch rollout", fmt.Sprintf("%s of %s (policy %s)%s", r.Rollout, r.Version, r.Policy, approvedText(r)))
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
		if group := subcommands(c.args[0]); len(group) > 0 {
			printGroupUsage(c.env.Out, c.args[0], group)
			return nil
		}
		return usagef("unknown command %q", strings.Join(c.args, " "))
	}
	fs := flag.NewFlagSet(sp.name, flag.ContinueOnError)
	fs.SetOutput(c.env.Out)
	c.env.globalFlags(fs)
	sp.build(c.env, fs)
	printCommandUsage(c.env.Out, sp, fs)
	return nil
}

type notifyRetryCmd struct {
	env  *Env
	args app.RetryArgs
}

func newNotifyRetryCmd(env *Env, fs *flag.FlagSet) Command {
	c := &notifyRetryCmd{env: env}
	fs.BoolVar(&c.args.All, "all", false, "send every undelivered alert again")
	return c
}

func (c *notifyRetryCmd) SetArgs(args []string) error {
	switch {
	case len(args) == 0 && c.args.All:
		return nil
	case len(args) == 1 && !c.args.All:
		id, err := strconv.ParseUint(args[0], 10, 64)
		if err != nil || id == 0 {
			return usagef("alert ID must be a positive number, not %q", args[0])
		}
		c.args.ID = id
		return nil
	}
	return usagef("give one alert ID or --all")
}

func (c *notifyRetryCmd) Run(ctx context.Context) error {
	var res app.RetryResult
	if err := c.env.call(ctx, "notify.retry", c.args, &res); err != nil {
		return err
	}
	return c.env.emit(res, func(w io.Writer) {
		fmt.Fprintf(w, "%d alerts queued again\n", len(res.Requeued))
	})
}

type notifyTestCmd struct{ env *Env }

func (c *notifyTestCmd) Run(ctx context.Context) error {
	var res map[string]string
	if err := c.env.call(ctx, "notify.test", nil, &res); err != nil {
		return err
	}
	return c.env.emit(res, func(w io.Writer) { fmt.Fprintf(w, "test message delivered via %s\n", res["channel"]) })
}
