package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/patchctl/patchctl/app"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/tracker"
)

type pollCmd struct{ env *Env }

func (c *pollCmd) Run(ctx context.Context) error {
	var rep tracker.Report
	if err := c.env.call(ctx, "poll", nil, &rep); err != nil {
		return err
	}
	failed := 0
	err := c.env.emit(rep, func(w io.Writer) {
		row(w, "SOURCE", "OUTCOME", "NEW", "KNOWN", "LATEST", "REQUESTS", "304s", "TIME", "ERROR")
		for _, s := range rep.Sources {
			latest := ""
			if s.Latest != nil {
				latest = s.Latest.Version
			}
			news := make([]string, 0, len(s.NewReleases))
			for _, r := range s.NewReleases {
				news = append(news, r.Version)
			}
			newCell := strings.Join(news, ",")
			if s.First {
				newCell = "(first poll: summary alert)"
			}
			row(w, s.Source, s.Outcome, newCell, s.Releases, latest, s.Stats.Requests, s.Stats.NotModified, s.Duration.D().Round(1e6).String(), s.Error)
		}
	})
	for _, s := range rep.Sources {
		if s.Error != "" {
			failed++
		}
	}
	if err != nil {
		return err
	}
	if failed > 0 {
		fmt.Fprintf(c.env.Err, "%d of %d sources failed; stored state is unchanged for them\n", failed, len(rep.Sources))
		return errFailed
	}
	return nil
}

func newReleasesCmd(env *Env, fs *flag.FlagSet) Command {
	q := &query[app.ReleasesArgs, app.ReleaseList]{env: env, method: "releases", table: releasesTable}
	fs.StringVar(&q.args.Source, "source", "", "only this `owner/repo`")
	return q
}

func releasesTable(w io.Writer, _ app.ReleasesArgs, list app.ReleaseList) {
	row(w, "SOURCE", "VERSION", "TAG", "KIND", "PUBLISHED", "SECURITY", "LATEST")
	for _, r := range list.Releases {
		kind := "release"
		switch {
		case r.Prerelease:
			kind = "pre-release"
		case r.TagOnly:
			kind = "tag"
		}
		sec := "-"
		if r.Security {
			sec = "yes: " + strings.Join(r.Reasons, ", ")
		}
		latest := ""
		if l, ok := list.Latest[r.Source]; ok && l.Tag == r.Tag {
			latest = "latest"
		}
		row(w, r.Source, r.Version, r.Tag, kind, r.PublishedAt, sec, latest)
	}
}

func newAdvisoriesCmd(env *Env, fs *flag.FlagSet) Command {
	q := &query[app.ReleasesArgs, []store.Advisory]{env: env, method: "advisories", table: advisoriesTable}
	fs.StringVar(&q.args.Source, "source", "", "only this `owner/repo`")
	return q
}

func advisoriesTable(w io.Writer, _ app.ReleasesArgs, advs []store.Advisory) {
	if len(advs) == 0 {
		fmt.Fprintln(w, "no repository security advisories known (the curated feed applies to 'patchctl inventory')")
		return
	}
	row(w, "SOURCE", "ID", "CVE", "SEVERITY", "AFFECTED", "PATCHED", "PUBLISHED", "SUMMARY")
	for _, a := range advs {
		row(w, a.Source, a.ID, a.CVE, a.Severity, a.VulnerableRange, a.PatchedVersion, a.PublishedAt, a.Summary)
	}
}
