package tracker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/go-github/v60/github"

	"github.com/patchctl/patchctl/store"
)

// builder turns GitHub's shapes into store records; it is shared by every source that
// reads GitHub's JSON (the API, a local directory).
type builder struct {
	source string
	log    *slog.Logger
}

// snapshot merges releases and plain tags by tag name: a tag without a Release object
// becomes a TagOnly release. Drafts and unparsable tags are skipped.
func (b builder) snapshot(rels []*github.RepositoryRelease, tags []*github.RepositoryTag, advs []*github.SecurityAdvisory) Snapshot {
	var snap Snapshot
	seen := map[string]bool{}
	for _, r := range rels {
		tag := r.GetTagName()
		if r.GetDraft() || seen[tag] {
			continue
		}
		v, err := ParseVersion(tag)
		if err != nil {
			b.log.Debug("skip release", "source", b.source, "tag", tag, "err", err)
			continue
		}
		seen[tag] = true
		snap.Releases = append(snap.Releases, store.Release{
			Source:      b.source,
			Tag:         tag,
			Version:     v.String(),
			Name:        r.GetName(),
			Prerelease:  r.GetPrerelease() || v.Prerelease() != "",
			PublishedAt: r.GetPublishedAt().Time,
			URL:         r.GetHTMLURL(),
			Notes:       r.GetBody(),
		})
	}
	for _, t := range tags {
		tag := t.GetName()
		if seen[tag] {
			continue
		}
		v, err := ParseVersion(tag)
		if err != nil {
			b.log.Debug("skip tag", "source", b.source, "tag", tag, "err", err)
			continue
		}
		seen[tag] = true
		snap.Releases = append(snap.Releases, store.Release{
			Source:     b.source,
			Tag:        tag,
			Version:    v.String(),
			Prerelease: v.Prerelease() != "",
			TagOnly:    true,
		})
	}
	for _, a := range advs {
		if a.GetGHSAID() == "" || (a.GetState() != "" && a.GetState() != "published") {
			continue
		}
		adv := store.Advisory{
			Source:      b.source,
			ID:          a.GetGHSAID(),
			CVE:         a.GetCVEID(),
			Summary:     a.GetSummary(),
			Severity:    a.GetSeverity(),
			PublishedAt: a.GetPublishedAt().Time,
			WithdrawnAt: a.GetWithdrawnAt().Time,
			URL:         a.GetHTMLURL(),
		}
		for _, v := range a.Vulnerabilities {
			if adv.VulnerableRange == "" {
				adv.VulnerableRange = v.GetVulnerableVersionRange()
			}
			if adv.PatchedVersion == "" {
				adv.PatchedVersion = v.GetPatchedVersions()
			}
			if adv.PatchedVersion == "" {
				adv.PatchedVersion = v.GetFirstPatchedVersion().GetIdentifier()
			}
		}
		snap.Advisories = append(snap.Advisories, adv)
	}
	return snap
}

// decodeJSON decodes data into v; a syntax or type error names the file and line.
func decodeJSON(name string, data []byte, v any) error {
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off >= 0 && off <= int64(len(data)) {
		line := 1 + bytes.Count(data[:off], []byte("\n"))
		return fmt.Errorf("%s:%d: malformed JSON: %w", name, line, err)
	}
	return fmt.Errorf("%s: malformed JSON: %w", name, err)
}
