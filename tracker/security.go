package tracker

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/patchctl/patchctl/store"
)

// flagger marks releases as security-relevant.
type flagger struct {
	keywords []string // lower case
}

func newFlagger(keywords []string) *flagger {
	f := &flagger{}
	for _, k := range keywords {
		if k = strings.ToLower(strings.TrimSpace(k)); k != "" {
			f.keywords = append(f.keywords, k)
		}
	}
	return f
}

// mentions reports whether text (lower case) contains kw at the start of a word: "dos"
// matches "DoS" but not "windows"; a keyword may be a stem ("vulnerab").
func mentions(text, kw string) bool {
	for off := 0; ; {
		i := strings.Index(text[off:], kw)
		if i < 0 {
			return false
		}
		i += off
		prev, _ := utf8.DecodeLastRuneInString(text[:i])
		if i == 0 || !(unicode.IsLetter(prev) || unicode.IsDigit(prev)) {
			return true
		}
		off = i + 1
	}
}

// flag sets Security and Reasons on every release: an advisory naming it as a patched
// version, or a keyword in its name or notes. Flags are recomputed from scratch each poll,
// so an advisory published after a release still flags it.
func (f *flagger) flag(releases []store.Release, advisories []store.Advisory) {
	patchedBy := map[string][]string{} // normalised version → advisory ids
	for _, a := range advisories {
		if !a.WithdrawnAt.IsZero() {
			continue
		}
		for _, v := range patchedVersions(a.PatchedVersion) {
			patchedBy[v] = append(patchedBy[v], "advisory:"+a.ID)
		}
	}
	for i := range releases {
		r := &releases[i]
		r.Reasons = nil
		if v, err := releaseVersion(*r); err == nil {
			r.Reasons = append(r.Reasons, patchedBy[v.String()]...)
		}
		text := strings.ToLower(r.Name + "\n" + r.Notes)
		for _, kw := range f.keywords {
			if mentions(text, kw) {
				r.Reasons = append(r.Reasons, "keyword:"+kw)
			}
		}
		r.Security = len(r.Reasons) > 0
	}
}

// patchedVersions reads an advisory's patched versions ("0.5.0", ">= 0.5.0",
// "0.4.2, 0.5.0") as normalised versions.
func patchedVersions(patched string) []string {
	var out []string
	for _, p := range strings.Split(patched, ",") {
		p = strings.TrimLeft(strings.TrimSpace(p), ">= ")
		if v, err := ParseVersion(p); err == nil {
			out = append(out, v.String())
		}
	}
	return out
}
