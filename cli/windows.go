package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/patchctl/patchctl/app"
)

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
	row(w, "WINDOW", "KIND", "OPENS (LOCAL)", "ZONE", "OPENS (UTC)", "DURATION", "NO NEW HOST AFTER", "SERVES", "STATE")
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
		row(w, e.Name, e.Kind, e.Opens.Format("2006-01-02 15:04 -07:00"), e.TimeZone, e.OpensUTC.Format("2006-01-02 15:04"), shortDuration(e.Duration.D()),
			e.LastStart.Format("15:04 -07:00"), serves, state)
	}
}
