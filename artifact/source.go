// Package artifact resolves a nutcracker release version to a verified binary on local disk:
// from a Debian package, a tarball or a bare binary, fetched from a URL or a local path,
// checked against a pinned or published SHA-256, kept in a content-addressed cache, and
// accepted only if it reports the version asked for.
package artifact

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"text/template"
)

// Kind is the format of what a Source points at.
type Kind string

// The formats a Source can name.
const (
	KindDeb     Kind = "deb"     // Debian package; the binary is Member of data.tar.*
	KindTarball Kind = "tarball" // .tar.gz; the binary is Member
	KindBinary  Kind = "binary"  // the nutcracker binary itself
)

// DefaultDebMember is where Debian installs nutcracker.
const DefaultDebMember = "usr/sbin/nutcracker"

// Source says where the nutcracker of each version comes from. URL, Path, SHA256Sums and
// Member are templates in which {{.Version}} is the version asked for.
type Source struct {
	Kind Kind `yaml:"kind" json:"kind"`
	// Exactly one of URL (http or https) and Path (a local file).
	URL  string `yaml:"url,omitempty" json:"url,omitempty"`
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// SHA256 pins the hex SHA-256 of the file URL or Path names, per version.
	SHA256 map[string]string `yaml:"sha256,omitempty" json:"sha256,omitempty"`
	// SHA256Sums is the URL of a SHA256SUMS file listing the file by its base name; used for
	// versions SHA256 does not pin. A download needs one or the other.
	SHA256Sums string `yaml:"sha256sums,omitempty" json:"sha256sums,omitempty"`
	// Member is the binary's path inside a deb (default usr/sbin/nutcracker) or a tarball
	// (required).
	Member string `yaml:"member,omitempty" json:"member,omitempty"`
}

var validVersion = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+~_-]*$`) })

// Validate checks the source and names the offending field.
func (s Source) Validate() error {
	switch s.Kind {
	case KindDeb, KindTarball, KindBinary:
	case "":
		return fmt.Errorf("kind: required (deb, tarball or binary)")
	default:
		return fmt.Errorf("kind %q: want deb, tarball or binary", s.Kind)
	}
	switch {
	case s.URL == "" && s.Path == "":
		return fmt.Errorf("url or path: one is required")
	case s.URL != "" && s.Path != "":
		return fmt.Errorf("url and path: set only one")
	case s.URL != "":
		if err := checkURLTemplate("url", s.URL); err != nil {
			return err
		}
	default:
		if _, err := expand("path", s.Path, "0.0.0"); err != nil {
			return err
		}
	}
	if s.SHA256Sums != "" {
		if err := checkURLTemplate("sha256sums", s.SHA256Sums); err != nil {
			return err
		}
	}
	for v, sum := range s.SHA256 {
		if err := ValidVersion(v); err != nil {
			return fmt.Errorf("sha256: %w", err)
		}
		if !isHexDigest(sum, false) {
			return fmt.Errorf("sha256: %s: %q is not a hex SHA-256 (64 hex digits)", v, sum)
		}
	}
	switch {
	case s.Kind == KindBinary && s.Member != "":
		return fmt.Errorf("member: not allowed for kind binary")
	case s.Kind == KindTarball && s.Member == "":
		return fmt.Errorf("member: required for kind tarball (path of the binary inside it)")
	case s.Member != "":
		m, err := expand("member", s.Member, "0.0.0")
		if err != nil {
			return err
		}
		if _, err := cleanArchivePath(m); err != nil {
			return fmt.Errorf("member: %w", err)
		}
	}
	return nil
}

func checkURLTemplate(field, tmpl string) error {
	raw, err := expand(field, tmpl, "0.0.0")
	if err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%s %q: want an http or https URL", field, redact(raw))
	}
	return nil
}

// expand fills {{.Version}} into a template of field.
func expand(field, tmpl, version string) (string, error) {
	t, err := template.New(field).Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, struct{ Version string }{version}); err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	return b.String(), nil
}

// redact hides credentials a URL may carry.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Redacted()
}

// ErrBadVersion is a version string that cannot name a build: it is put into paths and URLs,
// so only letters, digits and . + ~ _ - are allowed.
var ErrBadVersion = errors.New("not a version")

// ValidVersion rejects a version that cannot name a build (ErrBadVersion).
func ValidVersion(v string) error {
	if !validVersion().MatchString(v) {
		return fmt.Errorf("version %q: %w (letters, digits and . + ~ _ - only, e.g. 0.5.0)", v, ErrBadVersion)
	}
	return nil
}
