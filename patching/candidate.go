package patching

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-version"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/inventory"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/tracker"
)

// Candidate is the release a policy would roll out.
type Candidate struct {
	Version string        `json:"version"`
	Release store.Release `json:"-"`
	// ReadyAt is when the release is old enough (published + min_release_age); a
	// fast-tracked candidate is ready at once.
	ReadyAt time.Time `json:"ready_at"`
	// FastTrack says why it skips the minimum age and may use security windows.
	FastTrack string `json:"fast_track,omitempty"`
}

// pickCandidate chooses a policy's candidate from the releases the tracker knows, or says
// why there is none.
func pickCandidate(pol config.PatchPolicy, rels []store.Release, bad []store.BadVersion, hosts []inventory.Exposure) (Candidate, string) {
	var rel store.Release
	if pol.Pin != "" {
		i := slices.IndexFunc(rels, func(r store.Release) bool { return sameVersion(r.Version, pol.Pin) })
		if i < 0 {
			return Candidate{}, fmt.Sprintf("pinned version %s is not a release patchctl knows", pol.Pin)
		}
		rel = rels[i]
		if rel.Prerelease && !pol.Prereleases {
			return Candidate{}, fmt.Sprintf("pinned version %s is a pre-release and the policy does not allow them", pol.Pin)
		}
	} else {
		latest, ok := tracker.Latest(rels, pol.Prereleases)
		if !ok {
			return Candidate{}, "no release known yet"
		}
		rel = latest
	}
	// The newest release being bad means no candidate: an older one is never proposed
	// instead, and a newer release (or an unmark) ends the wait.
	if i := slices.IndexFunc(bad, func(b store.BadVersion) bool { return sameVersion(b.Version, rel.Version) }); i >= 0 {
		return Candidate{}, fmt.Sprintf("%s is marked bad (%s); waiting for a newer release or `patchctl release unmark %s`", rel.Version, bad[i].Reason, rel.Version)
	}
	c := Candidate{Version: rel.Version, Release: rel}
	published := rel.PublishedAt
	if published.IsZero() {
		published = rel.FirstSeen
	}
	c.ReadyAt = published.Add(pol.MinReleaseAge)
	if why := fastTrack(pol, rel, hosts); why != "" {
		c.FastTrack, c.ReadyAt = why, published
	}
	return c, ""
}

// fastTrack says why a release skips the minimum age: it fixes an advisory that affects
// hosts of the fleet at or above the policy's severity, or the tracker flagged it
// security-relevant and the policy trusts that.
func fastTrack(pol config.PatchPolicy, rel store.Release, hosts []inventory.Exposure) string {
	if minSev := pol.Security.Severity(); pol.Security.MinSeverity != "" {
		type hit struct {
			sev   string
			hosts int
		}
		fixed := map[string]*hit{}
		var ids []string
		for _, h := range hosts {
			for _, f := range h.Findings {
				if f.Severity < minSev || f.FixedIn == "" || !atLeast(rel.Version, f.FixedIn) {
					continue
				}
				if fixed[f.ID] == nil {
					fixed[f.ID] = &hit{sev: f.Severity.String()}
					ids = append(ids, f.ID)
				}
				fixed[f.ID].hosts++
			}
		}
		if len(ids) > 0 {
			slices.Sort(ids)
			parts := make([]string, len(ids))
			for i, id := range ids {
				parts[i] = fmt.Sprintf("%s (%s, %d hosts)", id, fixed[id].sev, fixed[id].hosts)
			}
			return fmt.Sprintf("fixes %s affecting the fleet, at or above %s", strings.Join(parts, ", "), pol.Security.MinSeverity)
		}
	}
	if pol.Security.Flagged && rel.Security {
		return "release flagged security-relevant: " + strings.Join(rel.Reasons, ", ")
	}
	return ""
}

// behind lists the hosts (of envs, when given) known to run a version older than v.
func behind(hosts []inventory.Exposure, v string, envs []string) []string {
	want, err := tracker.ParseVersion(v)
	if err != nil {
		return nil
	}
	var out []string
	for _, h := range hosts {
		if len(envs) > 0 && !slices.Contains(envs, h.Environment) {
			continue
		}
		if got, err := tracker.ParseVersion(h.Version); err == nil && got.LessThan(want) {
			out = append(out, h.Host)
		}
	}
	slices.Sort(out)
	return out
}

func sameVersion(a, b string) bool {
	va, err1 := version.NewVersion(a)
	vb, err2 := version.NewVersion(b)
	return err1 == nil && err2 == nil && va.Equal(vb)
}

// atLeast reports whether version a is b or newer.
func atLeast(a, b string) bool {
	va, err1 := version.NewVersion(a)
	vb, err2 := version.NewVersion(b)
	return err1 == nil && err2 == nil && !va.LessThan(vb)
}
