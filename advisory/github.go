package advisory

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GitHubAdvisory is the part of a GitHub security advisory (repository or global advisory
// API; JSON field names as GitHub sends them) that matching needs.
type GitHubAdvisory struct {
	GHSAID          string                `json:"ghsa_id"`
	CVEID           string                `json:"cve_id"`
	Summary         string                `json:"summary"`
	Description     string                `json:"description"`
	Severity        string                `json:"severity"` // low, medium/moderate, high, critical, unknown
	HTMLURL         string                `json:"html_url"`
	PublishedAt     time.Time             `json:"published_at"`
	Vulnerabilities []GitHubVulnerability `json:"vulnerabilities"`
}

// GitHubVulnerability is one affected range of a GitHub advisory.
type GitHubVulnerability struct {
	VulnerableVersionRange string `json:"vulnerable_version_range"` // ">= 0.4.0, < 0.5.0"
	FirstPatchedVersion    string `json:"first_patched_version"`    // global advisories
	PatchedVersions        string `json:"patched_versions"`         // repository advisories: "0.5.0" or ">= 0.5.0"
}

var firstVersion = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`v?\d+(\.\d+)*(-[0-9A-Za-z.-]+)?`) })

// FromGitHub converts a GitHub advisory into advisories matched by the same rule as the
// feed's: one per vulnerable range, the second and later ones with "/2", "/3"… appended to
// the ID. The ID is the CVE id when there is one, else the GHSA id. GitHub does not say when
// the fixing release came out, so Published is the advisory's publication time.
func FromGitHub(g GitHubAdvisory) ([]Advisory, error) {
	id := g.CVEID
	if id == "" {
		id = g.GHSAID
	}
	sev := SeverityUnknown
	switch s := strings.ToLower(g.Severity); s {
	case "", "unknown":
	case "moderate":
		sev = SeverityMedium
	default:
		var err error
		if sev, err = ParseSeverity(s); err != nil {
			return nil, fmt.Errorf("github advisory %s: %w", id, err)
		}
	}
	var refs []string
	if g.HTMLURL != "" {
		refs = []string{g.HTMLURL}
	}
	var out []Advisory
	for i, v := range g.Vulnerabilities {
		fixed := v.FirstPatchedVersion
		if fixed == "" {
			fixed = firstVersion().FindString(v.PatchedVersions)
		}
		a := Advisory{
			ID: id, Title: g.Summary, Severity: sev, Affected: v.VulnerableVersionRange,
			FixedIn: fixed, Description: g.Description, References: refs,
		}
		if fixed != "" {
			a.Published = g.PublishedAt
		}
		if i > 0 {
			a.ID += "/" + strconv.Itoa(i+1)
		}
		if err := a.compile(); err != nil {
			return nil, fmt.Errorf("github advisory %s: vulnerability %d: %w", id, i+1, err)
		}
		out = append(out, a)
	}
	return out, nil
}
