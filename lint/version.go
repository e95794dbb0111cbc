package lint

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/go-version"
)

// knownVersions are the nutcracker releases whose configuration rules this package knows,
// oldest first. The v0.4.0 tag builds a binary that calls itself 0.3.0.
var knownVersions = []string{
	"0.1.16", "0.1.17", "0.1.18", "0.1.19", "0.1.20",
	"0.2.0", "0.2.1", "0.2.2", "0.2.3", "0.2.4",
	"0.3.0", "0.4.0", "0.4.1", "0.5.0-RC1", "0.5.0",
}

// KnownVersions returns the nutcracker releases the rules are written for, oldest first.
func KnownVersions() []*version.Version {
	out := make([]*version.Version, len(knownVersions))
	for i, s := range knownVersions {
		out[i] = version.Must(version.NewVersion(s))
	}
	return out
}

// Newest returns the newest known release, the default target.
func Newest() *version.Version {
	return version.Must(version.NewVersion(knownVersions[len(knownVersions)-1]))
}

// ParseVersion reads a target version as written in tags or by `nutcracker -V`:
// "0.5.0", "v0.5.0", "0.5.0-RC1". Versions outside KnownVersions are refused, since the
// rules for them are unknown.
func ParseVersion(s string) (*version.Version, error) {
	v, err := version.NewVersion(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("target version %q: %w", s, err)
	}
	for _, k := range KnownVersions() {
		if k.Equal(v) || (k.Prerelease() != "" && k.Core().Equal(v.Core()) && strings.EqualFold(k.Prerelease(), v.Prerelease())) {
			return k, nil
		}
	}
	return nil, fmt.Errorf("target version %q: unknown nutcracker release (known: %s)", s, strings.Join(knownVersions, ", "))
}

// gate answers "does the target have this feature" questions. Release candidates count as
// the release they precede: 0.5.0-RC1 and 0.5.0 have the same rules. It compares
// numbers: go-version parses with a large regexp, and newFeatures asks about thirty
// times per file, half of lint's work on a small file.
type gate struct{ core []int }

func newGate(target *version.Version) gate {
	if target == nil {
		target = Newest()
	}
	return gate{core: target.Segments()}
}

// since reports whether the target is at least release v, written "a.b.c".
func (g gate) since(v string) bool {
	parts := strings.Split(v, ".")
	for i := range max(len(parts), len(g.core)) {
		want, have := 0, 0
		if i < len(parts) {
			want, _ = strconv.Atoi(parts[i])
		}
		if i < len(g.core) {
			have = g.core[i]
		}
		if have != want {
			return have > want
		}
	}
	return true
}
