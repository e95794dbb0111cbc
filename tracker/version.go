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
	slices.SortStableFunc(releases, func(a, b store.Release) int {
		va, errA := releaseVersion(a)
		vb, errB := releaseVersion(b)
		switch {
		case errA != nil && errB != nil:
			return strings.Compare(a.Tag, b.Tag)
		case errA != nil:
			return 1
		case errB != nil:
			return -1
		}
		return vb.Compare(va)
	})
}

func releaseVersion(r store.Release) (*version.Version, error) {
	if r.Version != "" {
		return ParseVersion(r.Version)
	}
	return ParseVersion(r.Tag)
}
