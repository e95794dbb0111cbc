package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/patchctl/patchctl/app"
	"github.com/patchctl/patchctl/patching"
)

// argCall is a command that takes exactly one positional argument and makes one call.
type argCall[T any] struct {
	env    *Env
	what   string // the argument's name, for errors
	method string
	args   func(string) any
	done   func(w io.Writer, v T)
	arg    string
}

func (c *argCall[T]) SetArgs(args []string) error {
	if len(args) != 1 || args[0] == "" {
		return fmt.Errorf("want one %s", c.what)
	}
	c.arg = args[0]
	return nil
}

func (c *argCall[T]) Run(ctx context.Context) error {
	var v T
	if err := c.env.call(ctx, c.method, c.args(c.arg), &v); err != nil {
		return err
	}
	return c.env.emit(v, func(w io.Writer) { c.done(w, v) })
}

func newApproveCmd(env *Env, _ *flag.FlagSet) Command {
	return &argCall[app.PatchRollout]{env: env, what: "rollout ID", method: "rollout.approve",
		args: func(id string) any { return app.RolloutIDArgs{ID: id} },
		done: func(w io.Writer, st app.PatchRollout) {
			fmt.Fprintf(w, "rollout %s of %s approved: its production waves run in the next production window (patchctl windows)\n", st.Rollout, st.Version)
		}}
}

func newUnmarkCmd(env *Env, _ *flag.FlagSet) Command {
	return &argCall[app.UnmarkArgs]{env: env, what: "VERSION", method: "release.unmark",
		args: func(v string) any { return app.UnmarkArgs{Version: v} },
		done: func(w io.Writer, a app.UnmarkArgs) {
			fmt.Fprintf(w, "%s may be a candidate again\n", a.Version)
		}}
}

// planText is a window's plan in a few words: "start 0.5.0 on 4 hosts", "wait: ...".
func planText(d patching.Decision) string {
	switch d.Action {
	case patching.ActionStart:
		return fmt.Sprintf("start %s on %d hosts", d.Candidate, len(d.Hosts))
	case patching.ActionResume, patching.ActionPromote, patching.ActionContinue:
		return fmt.Sprintf("%s rollout %s of %s", d.Action, d.Rollout, d.Candidate)
	}
	return d.Action + ": " + d.Why
}

func approvedText(st app.PatchRollout) string {
	s := ""
	if st.FastTrack != "" {
		s += ", fast track"
	}
	if st.Approved {
		s += ", production approved"
		if st.ApprovedBy != "" {
			s += " by " + st.ApprovedBy
		}
	}
	return s
}

func newWindowsCmd(env *Env, fs *flag.FlagSet) Command {
	q := &query[app.WindowsArgs, app.WindowsReport]{env: env, method: "windows", table: windowsTable,
		required: func(a app.WindowsArgs) error {
			if a.Next < 1 || a.Next > 1000 {
				return fmt.Errorf("--next must be between 1 and 1000, not %d", a.Next)
			}
			return nil
		}}
	fs.IntVar(&q.args.Next, "next", 5, "how many coming openings to list (1-1000)")
	return q
}

func windowsTable(w io.Writer, _ app.WindowsArgs, rep app.WindowsReport) {
	if len(rep.Windows) == 0 {
		fmt.Fprintln(w, "no patch windows: the daemon does not patch on its own (add patching.windows to patchctl.yml)")
		return
	}
	// Times come back from JSON with their offset but not the zone's abbreviation: show the
	// offset and the zone's name.
	row(w, "WINDOW", "KIND", "OPENS (LOCAL)", "ZONE", "OPENS (UTC)", "DURATION", "NO NEW HOST AFTER", "SERVES", "STATE", "WOULD DO")
	for _, e := range rep.Windows {
		serves := "policy " + e.Policy
		if len(e.Environments) > 0 {
			serves += ", env " + strings.Join(e.Environments, ",")
		}
		state := "coming"
		switch {
		case e.Blackout != "":
			state = "blackout " + e.Blackout
		case e.Open:
			state = "OPEN until " + e.Closes.Format("15:04 -07:00")
		case e.ClosesEarly != "":
			state = "closes early: blackout " + e.ClosesEarly
		}
		does := e.Plan.Action
		if e.Plan.Candidate != "" {
			does += " " + e.Plan.Candidate
		}
		row(w, e.Name, e.Kind, e.Opens.Format("2006-01-02 15:04 -07:00"), e.TimeZone, e.OpensUTC.Format("2006-01-02 15:04"), shortDuration(e.Duration.D()),
			e.LastStart.Format("15:04 -07:00"), serves, state, does)
	}
	// The reasons are sentences: they follow the table rather than widen it.
	fmt.Fprintln(w)
	for _, e := range rep.Windows {
		fmt.Fprintf(w, "%s %s: %s\n", e.Name, e.Opens.Format("2006-01-02"), e.Plan.Why)
		if e.Plan.FastTrack != "" {
			fmt.Fprintf(w, "    fast track: %s\n", e.Plan.FastTrack)
		}
	}
	for _, r := range rep.Rollouts {
		fmt.Fprintf(w, "in progress: rollout %s of %s (policy %s)%s\n", r.Rollout, r.Version, r.Policy, approvedText(r))
	}
}
