package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/patchctl/patchctl/app"
	"github.com/patchctl/patchctl/inventory"
)

type inventoryCmd struct {
	env  *Env
	poll bool
}

func newInventoryCmd(env *Env, fs *flag.FlagSet) Command {
	c := &inventoryCmd{env: env}
	fs.BoolVar(&c.poll, "poll", false, "read every host's version now instead of showing the last pass")
	return c
}

func (c *inventoryCmd) Run(ctx context.Context) error {
	method := "inventory"
	if c.poll {
		method = "inventory.poll"
	}
	var rep app.FleetReport
	if err := c.env.call(ctx, method, nil, &rep); err != nil {
		return err
	}
	answering := 0
	for _, h := range rep.Hosts {
		if h.Answering {
			answering++
		}
	}
	if err := c.env.emit(rep, func(w io.Writer) {
		if len(rep.Hosts) == 0 {
			fmt.Fprintln(w, "no host observed yet: configure inventory.file, then run 'patchctl inventory --poll' or wait for the daemon")
			return
		}
		row(w, "HOST", "ENV", "VERSION", "LATEST", "BEHIND", "SEVERITY", "ADVISORIES", "DAYS EXPOSED", "ERROR")
		for _, h := range rep.Hosts {
			ids := make([]string, 0, len(h.Findings))
			days := 0
			for _, f := range h.Findings {
				ids = append(ids, f.ID)
				days = max(days, f.DaysExposed)
			}
			sev := "-"
			if h.Exposed() {
				sev = h.MaxSeverity.String()
			}
			row(w, h.Host, h.Environment, h.Version, h.Latest, h.Behind, sev, strings.Join(ids, ","), days, h.Error)
		}
		fmt.Fprintln(w)
		writeEnvironments(w, rep.Environments)
	}); err != nil {
		return err
	}
	// A fleet of which no host answers is a problem to act on (a network or stats-port
	// issue), not a report.
	if len(rep.Hosts) > 0 && answering == 0 {
		fmt.Fprintf(c.env.Err, "no host answered: all %d unreachable\n", len(rep.Hosts))
		return errFailed
	}
	return nil
}

// writeEnvironments prints the per-environment counts shared by inventory and status.
func writeEnvironments(w io.Writer, envs []inventory.EnvironmentSummary) {
	row(w, "ENVIRONMENT", "HOSTS", "ANSWERING", "EXPOSED", "BEHIND", "BY VERSION", "BY EXPOSURE")
	for _, e := range envs {
		row(w, e.Environment, e.Hosts, e.Answering, e.Exposed, e.Behind, counts(e.ByVersion), counts(e.ByExposure))
	}
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
