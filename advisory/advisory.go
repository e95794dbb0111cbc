// Package advisory is patchctl's feed of known twemproxy vulnerabilities and the rule that
// decides which of them affect a given nutcracker version.
//
// Matching rule. A release version V is affected when it satisfies the advisory's affected
// constraint. go-version constraints never match pre-releases, so a pre-release such as
// 0.5.0-RC1 is judged by its core version 0.5.0, except that a pre-release of the fixed_in
// release counts as fixed: twemproxy's release candidates carry their release's fixes
// (0.5.0 is "same as 0.5.0-RC1" in the ChangeLog). Any version at or above fixed_in is
// fixed, whatever the affected constraint says.
package advisory

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-version"
	"go.yaml.in/yaml/v3"

	"github.com/patchctl/patchctl/configs"
	"github.com/patchctl/patchctl/internal/strictyaml"

	"github.com/patchctl/patchctl/internal/readfile"
)

// Severity ranks advisories; the zero value is SeverityUnknown.
type Severity int

// Severities, in increasing order.
const (
	SeverityUnknown Severity = iota
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = []string{"unknown", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return "severity(" + strconv.Itoa(int(s)) + ")"
	}
	return severityNames[s]
}

// ParseSeverity accepts the four names in a feed (low, medium, high, critical), any case.
func ParseSeverity(s string) (Severity, error) {
	if i := slices.Index(severityNames, strings.ToLower(s)); i > 0 {
		return Severity(i), nil
	}
	return SeverityUnknown, fmt.Errorf("severity %q is not one of low, medium, high, critical", s)
}

// MarshalText writes the name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a name, "unknown" included (it round-trips stored values).
func (s *Severity) UnmarshalText(b []byte) error {
	if string(b) == "unknown" {
		*s = SeverityUnknown
		return nil
	}
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// Advisory is one known vulnerability and the versions it affects.
type Advisory struct {
	ID          string    `json:"id"`
	Title       string    `json:"title"`
	Severity    Severity  `json:"severity"`
	Affected    string    `json:"affected"`           // go-version constraint, e.g. ">= 0.4.0, < 0.4.1"
	FixedIn     string    `json:"fixed_in,omitempty"` // first fixed release; "" = none yet
	Published   time.Time `json:"published,omitzero"` // release date of FixedIn
	Description string    `json:"description,omitempty"`
	References  []string  `json:"references,omitempty"`

	affected version.Constraints
	fixed    *version.Version
}

// compile parses and checks the version fields.
func (a *Advisory) compile() error {
	if a.ID == "" {
		return errors.New("id: missing")
	}
	if a.Title == "" {
		return errors.New("title: missing")
	}
	if a.Affected == "" {
		return errors.New("affected: missing")
	}
	c, err := version.NewConstraint(a.Affected)
	if err != nil {
		return fmt.Errorf("affected: %w", err)
	}
	a.affected = c
	a.fixed = nil
	if a.FixedIn != "" {
		if a.fixed, err = version.NewVersion(a.FixedIn); err != nil {
			return fmt.Errorf("fixed_in: %w", err)
		}
		if c.Check(a.fixed) {
			return fmt.Errorf("fixed_in: %s is inside the affected range %q", a.FixedIn, a.Affected)
		}
		if a.Published.IsZero() {
			return errors.New("published: missing (the release date of fixed_in)")
		}
	}
	return nil
}

// Affects reports whether v is vulnerable, by the rule in the package comment.
func (a *Advisory) Affects(v *version.Version) bool {
	if a.fixed != nil {
		if v.GreaterThanOrEqual(a.fixed) {
			return false
		}
		if v.Prerelease() != "" && v.Core().Equal(a.fixed.Core()) {
			return false
		}
	}
	if v.Prerelease() != "" {
		v = v.Core()
	}
	return a.affected.Check(v)
}

// Feed is a validated set of advisories. The zero Feed is empty.
type Feed struct {
	list []Advisory
}

// New validates advisories (for instance read back from storage) into a feed. A later
// advisory replaces an earlier one with the same ID.
func New(advisories ...Advisory) (*Feed, error) {
	f := &Feed{}
	for i := range advisories {
		a := advisories[i]
		a.References = slices.Clone(a.References)
		if err := a.compile(); err != nil {
			return nil, fmt.Errorf("advisory %d (%s): %w", i+1, a.ID, err)
		}
		f.put(a)
	}
	return f, nil
}

func (f *Feed) put(a Advisory) {
	if i := slices.IndexFunc(f.list, func(b Advisory) bool { return b.ID == a.ID }); i >= 0 {
		f.list[i] = a
		return
	}
	f.list = append(f.list, a)
}

// Merge returns a feed with the advisories of f and then of others; an advisory of a later
// feed replaces one with the same ID, so a user's feed can correct a shipped entry.
func (f *Feed) Merge(others ...*Feed) *Feed {
	m := &Feed{list: slices.Clone(f.list)}
	for _, o := range others {
		for _, a := range o.list {
			m.put(a)
		}
	}
	return m
}

// All returns every advisory, in feed order.
func (f *Feed) All() []Advisory { return slices.Clone(f.list) }

// Affecting returns the advisories that affect version v, most severe first.
func (f *Feed) Affecting(v string) ([]Advisory, error) {
	ver, err := version.NewVersion(v)
	if err != nil {
		return nil, fmt.Errorf("version %q: %w", v, err)
	}
	var out []Advisory
	for i := range f.list {
		if f.list[i].Affects(ver) {
			out = append(out, f.list[i])
		}
	}
	slices.SortStableFunc(out, func(a, b Advisory) int { return int(b.Severity - a.Severity) })
	return out, nil
}

type feedFile struct {
	Advisories []feedEntry `yaml:"advisories"`
}

// feedEntry is an Advisory as written in a feed file.
type feedEntry struct {
	ID          string   `yaml:"id"`
	Title       string   `yaml:"title"`
	Severity    Severity `yaml:"severity"`
	Affected    string   `yaml:"affected"`
	FixedIn     string   `yaml:"fixed_in"`
	Published   date     `yaml:"published"`
	Description string   `yaml:"description"`
	References  []string `yaml:"references"`
}

// date is a YYYY-MM-DD date whose errors name their line.
type date struct{ time.Time }

func (d *date) UnmarshalYAML(n *yaml.Node) error {
	t, err := time.Parse(time.DateOnly, n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: published: %q is not a date (YYYY-MM-DD)", n.Line, n.Value)
	}
	d.Time = t
	return nil
}

// Builtin returns the feed shipped with patchctl.
func Builtin() (*Feed, error) { return Parse(configs.Advisories, "advisories.yml") }

// MaxFeedSize caps an advisory feed file; the shipped one is a few KiB.
const MaxFeedSize = 4 << 20

// Load returns the built-in feed extended by the feed files at paths, in order.
func Load(paths ...string) (*Feed, error) {
	f, err := Builtin()
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		data, err := readfile.Read(p, MaxFeedSize)
		if err != nil {
			return nil, fmt.Errorf("read advisory feed: %w", err)
		}
		extra, err := Parse(data, p)
		if err != nil {
			return nil, err
		}
		f = f.Merge(extra)
	}
	return f, nil
}

// Parse reads a feed file strictly: unknown keys, wrong types, invalid versions and
// duplicate IDs are errors naming the file and line.
func Parse(data []byte, file string) (*Feed, error) {
	var ff feedFile
	doc, err := strictyaml.Parse(data, file, &ff)
	if err != nil {
		return nil, err
	}
	lines := doc.ItemLines("advisories")
	f := &Feed{}
	seen := map[string]int{}
	for i, e := range ff.Advisories {
		a := Advisory{ID: e.ID, Title: e.Title, Severity: e.Severity, Affected: e.Affected, FixedIn: e.FixedIn,
			Published: e.Published.Time, Description: e.Description, References: e.References}
		line := strictyaml.LineAt(lines, i)
		err := a.compile()
		if err == nil && a.Severity == SeverityUnknown {
			err = errors.New("severity: missing")
		}
		if err != nil {
			return nil, strictyaml.At(file, line, "advisory %s: %v", orIndex(a.ID, i), err)
		}
		if prev, dup := seen[a.ID]; dup {
			return nil, strictyaml.At(file, line, "advisory %s: duplicate id (first on line %d)", a.ID, prev)
		}
		seen[a.ID] = line
		f.list = append(f.list, a)
	}
	return f, nil
}

func orIndex(id string, i int) string {
	if id != "" {
		return id
	}
	return "#" + strconv.Itoa(i+1)
}

// UnmarshalYAML reads a severity name, naming the line when it is not one.
func (s *Severity) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSeverity(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: severity %q is not one of low, medium, high, critical", n.Line, n.Value)
	}
	*s = v
	return nil
}
