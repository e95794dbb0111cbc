package tracker

import (
	"regexp"
	"strings"

	"github.com/patchctl/patchctl/store"
)

// flagger marks releases as security-relevant.
type flagger struct {
	keywords []string
	res      []*regexp.Regexp
}

func newFlagger(keywords []string) *flagger {
	f := &flagger{}
	for _, k := range keywords {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		// A keyword must start a word ("dos" matches "DoS" but not "windows"); it may be a
		// stem ("vulnerab").
		f.keywords = append(f.keywords, k)
		f.res = append(f.res, regexp.MustCompile(`(?i)(?:^|[^\pL\pN])`+regexp.QuoteMeta(k)))
	}
	return f
}

// flag sets Security and Reasons on every release: an advisory naming it as a patched
// version, or a keyword in its name or notes. Flags are recomputed from scratch each poll,
// so an advisory published after a release still flags it.
func (f *flagger) flag(releases []store.Release, advisories []store.Advisory) {
	for i := range releases {
		r := &releases[i]
		r.Security, r.Reasons = false, nil
		v, err := releaseVersion(*r)
		for _, a := range advisories {
			if err == nil && a.WithdrawnAt.IsZero() && patches(a.PatchedVersion, v.String()) {
				r.Reasons = append(r.Reasons, "advisory:"+a.ID)
			}
		}
		text := r.Name + "\n" + r.Notes
		for j, re := range f.res {
			if re.MatchString(text) {
				r.Reasons = append(r.Reasons, "keyword:"+f.keywords[j])
			}
		}
		r.Security = len(r.Reasons) > 0
	}
}

// patches reports whether an advisory's patched versions ("0.5.0", ">= 0.5.0",
// "0.4.2, 0.5.0") name version exactly.
func patches(patched, version string) bool {
	for _, p := range strings.Split(patched, ",") {
		p = strings.TrimLeft(strings.TrimSpace(p), ">= ")
		if pv, err := ParseVersion(p); err == nil && pv.String() == version {
			return true
		}
	}
	return false
}
