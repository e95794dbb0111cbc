package tracker

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/go-version"

	"github.com/patchctl/patchctl/store"
)

// ParseVersion parses a tag as a version: "v0.4.1", "0.5.0" and "v0.5.0-RC1" all parse.
// Tags with spaces or anything go-version rejects are errors.
func ParseVersion(tag string) (*version.Version, error) {
	v, err := version.NewVersion(tag)
	if err != nil || strings.ContainsFunc(tag, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("tag %q is not a version", tag)
	}
	return v, nil
}

// Latest returns the highest version among releases, by version order (never by date);
// pre-releases count only when allowPre is set. ok is false when there is none.
func Latest(releases []store.Release, allowPre bool) (latest store.Release, ok bool) {
	var best *version.Version
	for _, r := range releases {
		v, err := releaseVersion(r)
		if err != nil || (!allowPre && (r.Prerelease || v.Prerelease() != "")) {
			continue
		}
		if best == nil || v.GreaterThan(best) {
			best, latest, ok = v, r, true
		}
	}
	return latest, ok
}

// SortReleases orders releases by version, highest first; unparsable ones go last.
func SortReleases(releases []store.Release) {
	type keyed struct {
		r store.Release
		v *version.Version // nil when unparsable
	}
	ks := make([]keyed, len(releases))
	for i, r := range releases {
		ks[i].r = r
		ks[i].v, _ = releaseVersion(r)
	}
	slices.SortStableFunc(ks, func(a, b keyed) int {
		switch {
		case a.v == nil && b.v == nil:
			return strings.Compare(a.r.Tag, b.r.Tag)
		case a.v == nil:
			return 1
		case b.v == nil:
			return -1
		}
		return b.v.Compare(a.v)
	})
	for i := range ks {
		releases[i] = ks[i].r
	}
}

func releaseVersion(r store.Release) (*version.Version, error) {
	if r.Version != "" {
		return ParseVersion(r.Version)
	}
	return ParseVersion(r.Tag)
}
