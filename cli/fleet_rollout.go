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
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/waves"
)

// rolloutRequest is the flags shared by plan and start.
func rolloutRequest(fs *flag.FlagSet, req *waves.Request, waveList, hold *string) {
	fs.StringVar(&req.Version, "version", "", "nutcracker `version` to roll out (required)")
	fs.StringVar(&req.Policy, "policy", "", "rollout `policy` of patchctl.yml (default: rollouts.default_policy)")
	fs.StringVar(waveList, "waves", "", "only these `waves` of the policy, comma-separated (default: all)")
	if hold != nil {
		fs.StringVar(hold, "hold-after", "", "wait for a promote after these `waves`, comma-separated, whatever the policy says")
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

type rolloutPlanCmd struct {
	env   *Env
	req   waves.Request
	waves string
}

func newRolloutPlanCmd(env *Env, fs *flag.FlagSet) Command {
	c := &rolloutPlanCmd{env: env}
	rolloutRequest(fs, &c.req, &c.waves, nil)
	return c
}

func (c *rolloutPlanCmd) Run(ctx context.Context) error {
	if c.req.Version == "" {
		return usagef("--version is required")
	}
	c.req.Waves = splitList(c.waves)
	var p waves.Plan
	if err := c.env.call(ctx, "rollout.plan", c.req, &p); err != nil {
		return err
	}
	refused := 0
	if err := c.env.emit(p, func(w io.Writer) {
		fmt.Fprintf(w, "plan: nutcracker %s, policy %s\n", p.Version, p.Policy)
		row(w, "WAVE", "HOST", "ENVIRONMENT", "CURRENT", "ACTION", "ARTIFACT", "LINT", "PROBLEMS")
		for _, wv := range p.Waves {
			for _, h := range wv.Hosts {
				row(w, wv.Name, h.Host, h.Environment, h.Current, h.Action, yesNo(h.Artifact != ""), h.Lint, strings.Join(h.Problems, "; "))
			}
			if len(wv.Hosts) == 0 {
				row(w, wv.Name, "(no host)", "", "", "", "", "", "")
			}
		}
		for _, wv := range p.Waves {
			fmt.Fprintf(w, "wave %s: %d host(s), %d at a time, up to %d failure(s), soak %s%s\n", wv.Name, len(wv.Hosts),
				wv.MaxParallel, wv.MaxFailures, time.Duration(wv.SoakSeconds*float64(time.Second)), map[bool]string{true: ", then waits for promote"}[wv.Promote])
		}
		if len(p.Unmatched) > 0 {
			fmt.Fprintf(w, "in no wave: %s\n", strings.Join(p.Unmatched, ", "))
		}
	}); err != nil {
		return err
	}
	for _, wv := range p.Waves {
		for _, h := range wv.Hosts {
			if h.Action == waves.ActionRefuse {
				refused++
			}
		}
	}
	if refused > 0 {
		fmt.Fprintf(c.env.Err, "%d host(s) fail the pre-checks: the rollout would be refused\n", refused)
		return errFailed
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

type rolloutStartCmd struct {
	env         *Env
	req         waves.Request
	waves, hold string
}

func newRolloutStartCmd(env *Env, fs *flag.FlagSet) Command {
	c := &rolloutStartCmd{env: env}
	rolloutRequest(fs, &c.req, &c.waves, &c.hold)
	return c
}

func (c *rolloutStartCmd) Run(ctx context.Context) error {
	if c.req.Version == "" {
		return usagef("--version is required")
	}
	c.req.Waves, c.req.HoldAfter = splitList(c.waves), splitList(c.hold)
	var v waves.View
	if err := c.env.call(ctx, "rollout.start", c.req, &v); err != nil {
		return err
	}
	return c.env.emit(v, func(w io.Writer) {
		fmt.Fprintf(w, "rollout %s started: nutcracker %s, policy %s\n", v.ID, v.Version, v.Policy)
		writeRollout(w, v)
		fmt.Fprintf(w, "follow it with: patchctl rollout status %s --watch\n", v.ID)
	})
}

type rolloutStatusCmd struct {
	env   *Env
	id    string
	watch bool
	every time.Duration
}

func newRolloutStatusCmd(env *Env, fs *flag.FlagSet) Command {
	c := &rolloutStatusCmd{env: env}
	fs.BoolVar(&c.watch, "watch", false, "follow the rollout until it finishes or pauses (a live display on a terminal)")
	fs.DurationVar(&c.every, "interval", time.Second, "how often --watch asks the daemon")
	return c
}

func (c *rolloutStatusCmd) SetArgs(args []string) error {
	if len(args) > 1 {
		return fmt.Errorf("at most one rollout id, not %d arguments", len(args))
	}
	if len(args) == 1 {
		c.id = args[0]
	}
	return nil
}

func (c *rolloutStatusCmd) Run(ctx context.Context) error {
	if c.every <= 0 {
		return usagef("--interval must be positive")
	}
	var v waves.View
	if err := c.env.call(ctx, "rollout.status", app.RolloutArgs{ID: c.id}, &v); err != nil {
		return err
	}
	if c.watch {
		var err error
		if v, err = c.follow(ctx, v); err != nil {
			return err
		}
	}
	if err := c.env.emit(v, func(w io.Writer) { writeRollout(w, v) }); err != nil {
		return err
	}
	if v.State == waves.StateFailed || c.watch && v.State != waves.StateSucceeded {
		return errFailed
	}
	return nil
}

// follow polls the rollout until it stops moving. On a terminal the display is redrawn
// in place; otherwise one line is printed per change.
func (c *rolloutStatusCmd) follow(ctx context.Context, v waves.View) (waves.View, error) {
	tty := c.env.Output == "text" && isTerminal(c.env.Out)
	last := ""
	for {
		if c.env.Output == "text" {
			if tty {
				fmt.Fprint(c.env.Out, "\033[H\033[2J")
				c.env.emit(v, func(w io.Writer) { writeRollout(w, v) })
			} else if line := progressLine(v); line != last {
				fmt.Fprintln(c.env.Out, line)
				last = line
			}
		}
		if v.State != waves.StateRunning && v.State != waves.StateAborting {
			if tty || c.env.Output != "text" {
				return v, nil
			}
			fmt.Fprintln(c.env.Out)
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(c.every):
		}
		if err := c.env.call(ctx, "rollout.status", app.RolloutArgs{ID: v.ID}, &v); err != nil {
			return v, err
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// waveCounts counts a wave's hosts by how far they got.
type waveCounts struct{ done, running, failed, pending, skipped int }

func countWave(w waves.WaveView, hosts map[string]store.RolloutHost) waveCounts {
	var n waveCounts
	for _, name := range w.Hosts {
		switch hosts[name].State {
		case waves.HostSucceeded, waves.HostRolledBack:
			n.done++
		case waves.HostRunning, waves.HostRollingBack:
			n.running++
		case waves.HostFailed, waves.HostRollbackFailed:
			n.failed++
		case waves.HostSkipped, waves.HostExcluded:
			n.skipped++
		default:
			n.pending++
		}
	}
	return n
}

func progressLine(v waves.View) string {
	parts := []string{fmt.Sprintf("%s %s", v.ID, v.State)}
	for _, w := range v.Waves {
		n := countWave(w, v.Hosts)
		parts = append(parts, fmt.Sprintf("%s %s %d/%d", w.Name, w.State, n.done+n.skipped, len(w.Hosts)))
	}
	if v.Reason != "" {
		parts = append(parts, v.Reason)
	}
	return strings.Join(parts, " | ")
}

func writeRollout(w io.Writer, v waves.View) {
	state := v.State
	if v.Reason != "" {
		state += " (" + v.Reason + ")"
	}
	fmt.Fprintf(w, "rollout %s: nutcracker %s, policy %s: %s\n", v.ID, v.Version, v.Policy, state)
	row(w, "WAVE", "STATE", "DONE", "RUNNING", "FAILED", "PENDING", "SKIPPED", "NOTE")
	for _, wv := range v.Waves {
		n := countWave(wv, v.Hosts)
		note := wv.Reason
		if wv.State == waves.WaveSoaking {
			note = "soaking until " + wv.SoakUntil.UTC().Format(time.TimeOnly)
		}
		row(w, wv.Name, wv.State, n.done, n.running, n.failed, n.pending, n.skipped, note)
	}
	fmt.Fprintln(w)
	row(w, "HOST", "WAVE", "STATE", "FROM", "NOTE")
	for _, wv := range v.Waves {
		for _, name := range wv.Hosts {
			h := v.Hosts[name]
			note := h.Note
			if h.Error != "" {
				note = h.Error
			}
			row(w, name, wv.Name, h.State, h.From, note)
		}
	}
	if len(v.Unmatched) > 0 {
		fmt.Fprintf(w, "in no wave: %s\n", strings.Join(v.Unmatched, ", "))
	}
}

type rolloutListCmd struct{ env *Env }

func (c *rolloutListCmd) Run(ctx context.Context) error {
	var l app.RolloutList
	if err := c.env.call(ctx, "rollout.list", nil, &l); err != nil {
		return err
	}
	return c.env.emit(l, func(w io.Writer) {
		row(w, "ID", "VERSION", "POLICY", "STATE", "STARTED", "FINISHED", "REASON")
		for _, r := range l.Rollouts {
			row(w, r.ID, r.Version, r.Policy, r.State, r.Started, r.Finished, r.Reason)
		}
	})
}

// rolloutControlCmd is pause, resume, promote, abort, and rollback --rollout.
type rolloutControlCmd struct {
	env    *Env
	method string
	args   app.RolloutArgs
}

func newRolloutControl(method string, reason bool) func(env *Env, fs *flag.FlagSet) Command {
	return func(env *Env, fs *flag.FlagSet) Command {
		c := &rolloutControlCmd{env: env, method: method}
		if reason {
			fs.StringVar(&c.args.Reason, "reason", "", "why, recorded in the events and sent to Slack")
		}
		return c
	}
}

func (c *rolloutControlCmd) SetArgs(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("expects one rollout id")
	}
	c.args.ID = args[0]
	return nil
}

func (c *rolloutControlCmd) Run(ctx context.Context) error {
	var r waves.View
	if err := c.env.call(ctx, c.method, c.args, &r); err != nil {
		return err
	}
	return c.env.emit(r, func(w io.Writer) {
		state := r.State
		if r.Reason != "" {
			state += " (" + r.Reason + ")"
		}
		fmt.Fprintf(w, "rollout %s: %s\n", r.ID, state)
	})
}
