package inventory

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/go-version"

	"github.com/patchctl/patchctl/advisory"
)

// Release is a known twemproxy release, as the tracker lists them.
type Release struct {
	Version    string    `json:"version"` // tag, "v" prefix allowed
	Prerelease bool      `json:"prerelease"`
	Published  time.Time `json:"published"`
}

// Finding is one advisory that affects a host.
type Finding struct {
	ID       string            `json:"id"`
	Title    string            `json:"title"`
	Severity advisory.Severity `json:"severity"`
	FixedIn  string            `json:"fixed_in,omitempty"`
	// DaysExposed counts whole days since the fix was released; 0 without a fixed release.
	DaysExposed int `json:"days_exposed"`
}

// Exposure is where one host stands: its version, how far behind it is, what affects it.
type Exposure struct {
	Host        string            `json:"host"`
	Environment string            `json:"environment"`
	At          time.Time         `json:"at"`
	Answering   bool              `json:"answering"`
	Version     string            `json:"version,omitempty"` // "" = unknown
	Source      Source            `json:"source,omitempty"`
	Latest      string            `json:"latest,omitempty"` // latest stable release
	Behind      int               `json:"behind"`           // stable releases newer than Version
	Findings    []Finding         `json:"findings,omitempty"`
	MaxSeverity advisory.Severity `json:"max_severity"` // of Findings; unknown when none
	Error       string            `json:"error,omitempty"`
}

// Exposed reports whether any advisory affects the host.
func (e Exposure) Exposed() bool { return len(e.Findings) > 0 }

// Assessor judges observations against an advisory feed and the known releases.
type Assessor struct {
	feed   *advisory.Feed
	stable []*version.Version // ascending
}

// NewAssessor prepares the releases; pre-releases never count as the latest or as
// something a host is behind.
func NewAssessor(feed *advisory.Feed, releases []Release) (*Assessor, error) {
	a := &Assessor{feed: feed}
	for _, r := range releases {
		v, err := version.NewVersion(r.Version)
		if err != nil {
			return nil, fmt.Errorf("release %q: %w", r.Version, err)
		}
		if !r.Prerelease && v.Prerelease() == "" {
			a.stable = append(a.stable, v)
		}
	}
	slices.SortFunc(a.stable, func(x, y *version.Version) int { return x.Compare(y) })
	return a, nil
}

// Assess judges one observation at time now.
func (a *Assessor) Assess(o Observation, now time.Time) Exposure {
	e := Exposure{Host: o.Host, Environment: o.Environment, At: o.At, Answering: o.Answering,
		Version: o.Version, Source: o.Source, Error: o.Error}
	if n := len(a.stable); n > 0 {
		e.Latest = a.stable[n-1].Original()
	}
	if o.Version == "" {
		return e
	}
	v, err := version.NewVersion(o.Version)
	if err != nil {
		e.Error = joinErr(e.Error, fmt.Sprintf("version %q: %v", o.Version, err))
		return e
	}
	for _, s := range a.stable {
		if s.GreaterThan(v) {
			e.Behind++
		}
	}
	affecting, err := a.feed.Affecting(o.Version)
	if err != nil {
		e.Error = joinErr(e.Error, err.Error())
		return e
	}
	for _, adv := range affecting {
		f := Finding{ID: adv.ID, Title: adv.Title, Severity: adv.Severity, FixedIn: adv.FixedIn}
		if adv.FixedIn != "" && now.After(adv.Published) {
			f.DaysExposed = int(now.Sub(adv.Published) / (24 * time.Hour))
		}
		e.Findings = append(e.Findings, f)
		e.MaxSeverity = max(e.MaxSeverity, adv.Severity)
	}
	return e
}

// AssessAll judges every observation at time now.
func (a *Assessor) AssessAll(obs []Observation, now time.Time) []Exposure {
	out := make([]Exposure, len(obs))
	for i, o := range obs {
		out[i] = a.Assess(o, now)
	}
	return out
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// Unknown is the key counting hosts whose version is unknown, and Unexposed the exposure
// key of hosts no advisory affects.
const (
	Unknown   = "unknown"
	Unexposed = "none"
)

// EnvironmentSummary counts the hosts of one environment.
type EnvironmentSummary struct {
	Environment string `json:"environment"`
	Hosts       int    `json:"hosts"`
	Answering   int    `json:"answering"`
	Exposed     int    `json:"exposed"`
	Behind      int    `json:"behind"` // hosts running an older version than the latest stable
	// ByVersion counts hosts per running version (Unknown when not known).
	ByVersion map[string]int `json:"by_version"`
	// ByExposure counts hosts per highest affecting severity, Unexposed when none
	// and Unknown when the version is not known.
	ByExposure map[string]int `json:"by_exposure"`
}

// Summarize counts exposures per environment, sorted by environment name.
func Summarize(exps []Exposure) []EnvironmentSummary {
	byEnv := map[string]*EnvironmentSummary{}
	for _, e := range exps {
		s := byEnv[e.Environment]
		if s == nil {
			s = &EnvironmentSummary{Environment: e.Environment, ByVersion: map[string]int{}, ByExposure: map[string]int{}}
			byEnv[e.Environment] = s
		}
		s.Hosts++
		if e.Answering {
			s.Answering++
		}
		if e.Behind > 0 {
			s.Behind++
		}
		switch {
		case e.Version == "":
			s.ByVersion[Unknown]++
			s.ByExposure[Unknown]++
		case e.Exposed():
			s.ByVersion[e.Version]++
			s.ByExposure[e.MaxSeverity.String()]++
			s.Exposed++
		default:
			s.ByVersion[e.Version]++
			s.ByExposure[Unexposed]++
		}
	}
	out := make([]EnvironmentSummary, 0, len(byEnv))
	for _, s := range byEnv {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b EnvironmentSummary) int { return cmp.Compare(a.Environment, b.Environment) })
	return out
}
