// Package config loads patchctl.yml: strict YAML (unknown keys and wrong types are errors
// that name the line), defaults for everything optional, then validation.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/patchctl/patchctl/internal/readfile"
)

// Config is the whole patchctl.yml.
type Config struct {
	DataDir     string        `yaml:"data_dir" json:"data_dir"`
	Socket      string        `yaml:"socket" json:"socket"`
	SocketGroup string        `yaml:"socket_group" json:"socket_group,omitempty"`
	API         API           `yaml:"api" json:"api"`
	Log         Log           `yaml:"log" json:"log"`
	Metrics     Metrics       `yaml:"metrics" json:"metrics"`
	GitHub      GitHub        `yaml:"github" json:"github"`
	Tracker     Tracker       `yaml:"tracker" json:"tracker"`
	Slack       Slack         `yaml:"slack" json:"slack"`
	Notify      Notify        `yaml:"notify" json:"notify"`
	Inventory   Inventory     `yaml:"inventory" json:"inventory"`
	Artifacts   Artifacts     `yaml:"artifacts" json:"artifacts"`
	Retention   Retention     `yaml:"retention" json:"retention"`
	Patching    Patching      `yaml:"patching" json:"patching"`
	Shutdown    time.Duration `yaml:"shutdown_timeout" json:"shutdown_timeout"`

	// File is where the configuration was read from ("" for defaults).
	File string `yaml:"-" json:"file,omitempty"`

	root *yaml.Node // the parsed document, to name lines in errors found after loading
}

// API restricts what callers on the socket may do.
type API struct {
	// AllowUsers and AllowGroups (names or numeric ids) may run changing operations
	// (deploy, rollback, adopt, rollouts, reload, notify retry, abort). Both empty: anyone
	// who can open the socket. Reading stays open to everyone who can open the socket.
	AllowUsers  []string `yaml:"allow_users" json:"allow_users"`
	AllowGroups []string `yaml:"allow_groups" json:"allow_groups"`
}

// Restricted reports whether changing operations are limited to listed users and groups.
func (a API) Restricted() bool { return len(a.AllowUsers)+len(a.AllowGroups) > 0 }

// Log selects the log level and format.
type Log struct {
	Level  string `yaml:"level" json:"level"`   // debug, info, warn, error
	Format string `yaml:"format" json:"format"` // text, json
}

// Metrics is the Prometheus endpoint.
type Metrics struct {
	Listen string `yaml:"listen" json:"listen"` // "" disables
}

// GitHub is how the tracker reaches GitHub (or GitHub Enterprise, or a mirror).
type GitHub struct {
	APIURL    string        `yaml:"api_url" json:"api_url"`
	Token     Secret        `yaml:"token" json:"token,omitempty"`
	TokenFile string        `yaml:"token_file" json:"token_file,omitempty"`
	TokenEnv  string        `yaml:"token_env" json:"token_env,omitempty"`
	Timeout   time.Duration `yaml:"timeout" json:"timeout"`
}

// Tracker is what is polled and when.
type Tracker struct {
	Schedule         string        `yaml:"schedule" json:"schedule"`
	Jitter           time.Duration `yaml:"jitter" json:"jitter"`
	SecurityKeywords []string      `yaml:"security_keywords" json:"security_keywords"`
	Sources          []Source      `yaml:"sources" json:"sources"`
}

// Source is one repository (or a local directory laid out like GitHub's API).
type Source struct {
	Repo        string `yaml:"repo" json:"repo,omitempty"` // owner/name
	Dir         string `yaml:"dir" json:"dir,omitempty"`   // local mirror instead of the API
	Tags        *bool  `yaml:"tags" json:"tags,omitempty"`
	Advisories  *bool  `yaml:"advisories" json:"advisories,omitempty"`
	Prereleases bool   `yaml:"prereleases" json:"prereleases"` // pre-releases may be "latest"
}

// Name identifies the source in the store and in alerts.
func (s Source) Name() string { return s.Repo }

// WantTags reports whether plain tags are polled too (default true).
func (s Source) WantTags() bool { return s.Tags == nil || *s.Tags }

// WantAdvisories reports whether security advisories are polled (default true).
func (s Source) WantAdvisories() bool { return s.Advisories == nil || *s.Advisories }

// Slack is where alerts go: an incoming webhook, or a bot token and a channel.
type Slack struct {
	WebhookURL     Secret        `yaml:"webhook_url" json:"webhook_url,omitempty"`
	WebhookURLFile string        `yaml:"webhook_url_file" json:"webhook_url_file,omitempty"`
	WebhookURLEnv  string        `yaml:"webhook_url_env" json:"webhook_url_env,omitempty"`
	Token          Secret        `yaml:"token" json:"token,omitempty"`
	TokenFile      string        `yaml:"token_file" json:"token_file,omitempty"`
	TokenEnv       string        `yaml:"token_env" json:"token_env,omitempty"`
	Channel        string        `yaml:"channel" json:"channel,omitempty"`
	APIURL         string        `yaml:"api_url" json:"api_url"`
	Timeout        time.Duration `yaml:"timeout" json:"timeout"`
}

// Enabled reports whether any Slack destination is configured.
func (s Slack) Enabled() bool { return s.WebhookURL != "" || s.Token != "" }

// Notify tunes outbox delivery.
type Notify struct {
	MaxAttempts int           `yaml:"max_attempts" json:"max_attempts"`
	MinBackoff  time.Duration `yaml:"min_backoff" json:"min_backoff"`
	MaxBackoff  time.Duration `yaml:"max_backoff" json:"max_backoff"`
	Interval    time.Duration `yaml:"interval" json:"interval"` // how often the outbox is checked
	// MinGap is the least time between two messages (Slack: about one per second per channel).
	MinGap time.Duration `yaml:"min_gap" json:"min_gap"`
	// DigestAfter: more alerts than this due at once go out as one digest (0: never).
	DigestAfter int `yaml:"digest_after" json:"digest_after"`
}

// Retention says how long the store keeps what only grows; 0 keeps it forever.
type Retention struct {
	Events    time.Duration `yaml:"events" json:"events"`
	Delivered time.Duration `yaml:"delivered_alerts" json:"delivered_alerts"`
	HTTPCache time.Duration `yaml:"http_cache" json:"http_cache"`
}

// DefaultSecurityKeywords flag release notes as security-relevant.
var DefaultSecurityKeywords = []string{"security", "cve", "vulnerab", "crash", "segfault",
	"overflow", "out-of-bounds", "out of bounds", "use-after-free", "double free", "dos",
	"denial of service", "memory leak", "leak", "core dump", "invalid write", "invalid read"}

// Default returns the configuration used when a key is absent.
func Default() Config {
	return Config{
		DataDir: "/var/lib/patchctl",
		Log:     Log{Level: "info", Format: "text"},
		Metrics: Metrics{Listen: "127.0.0.1:9465"},
		GitHub:  GitHub{APIURL: "https://api.github.com/", Timeout: 30 * time.Second},
		Tracker: Tracker{Schedule: "0 */6 * * *", Jitter: 5 * time.Minute, SecurityKeywords: DefaultSecurityKeywords},
		Slack:   Slack{APIURL: "https://slack.com/api/", Timeout: 15 * time.Second},
		Notify: Notify{MaxAttempts: 12, MinBackoff: 2 * time.Second, MaxBackoff: 10 * time.Minute, Interval: 5 * time.Second,
			MinGap: time.Second, DigestAfter: 10},
		Retention: Retention{Events: 90 * 24 * time.Hour, Delivered: 30 * 24 * time.Hour, HTTPCache: 30 * 24 * time.Hour},
		Inventory: defaultInventory(),
		Patching:  Patching{Reminder: 24 * time.Hour},
		Shutdown:  10 * time.Second,
	}
}

// DefaultSources is polled when the file names none.
var DefaultSources = []Source{{Repo: "twitter/twemproxy"}}

// Error is a problem in the configuration, located as precisely as possible.
type Error struct {
	File  string
	Line  int    // 0 when unknown
	Field string // dotted path, e.g. tracker.sources[1].repo
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one file.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// MaxFileSize caps patchctl.yml; a real one is a few KiB.
const MaxFileSize = 1 << 20

// LoadFile reads and validates a configuration file.
func LoadFile(path string) (*Config, error) {
	data, err := readfile.Read(path, MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, bytes.NewReader(data))
}

var (
	reUnknown  = regexp.MustCompile(`^line (\d+): field (\S+) not found in type (\S+)$`)
	reTypeErr  = regexp.MustCompile(`^line (\d+): (.*)$`)
	reSyntaxLn = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// Parse reads a configuration from r; name is used in error messages.
func Parse(name string, r io.Reader) (*Config, error) {
	data, err := readfile.All(r, name, MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg := Default()
	cfg.File = name
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(name, err)
	}
	if len(root.Content) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return nil, yamlError(name, err)
		}
	}
	cfg.root = &root
	if errs := cfg.validate(&root); len(errs) > 0 {
		return nil, errs
	}
	return &cfg, nil
}

// ErrorAt is a problem found after loading (for example a pinned version the store does not
// know), located at the field's line in the file.
func (c *Config) ErrorAt(field, format string, args ...any) *Error {
	return &Error{File: c.File, Line: lineOf(c.root, field), Field: field, Msg: fmt.Sprintf(format, args...)}
}

func yamlError(name string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var errs Errors
		for _, msg := range te.Errors {
			if m := reUnknown.FindStringSubmatch(msg); m != nil {
				line, _ := strconv.Atoi(m[1])
				errs = append(errs, &Error{File: name, Line: line, Msg: fmt.Sprintf("unknown key %q", m[2])})
			} else if m := reTypeErr.FindStringSubmatch(msg); m != nil {
				line, _ := strconv.Atoi(m[1])
				errs = append(errs, &Error{File: name, Line: line, Msg: m[2]})
			} else {
				errs = append(errs, &Error{File: name, Msg: msg})
			}
		}
		return errs
	}
	if m := reSyntaxLn.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Errors{{File: name, Line: line, Msg: m[2]}}
	}
	return Errors{{File: name, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}}
}

// resolvePath makes relative paths in the file relative to the file's directory, so a
// configuration means the same thing whatever the working directory.
func (c *Config) resolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) || c.File == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.File), p)
}

// StorePath is the bbolt file.
func (c *Config) StorePath() string { return filepath.Join(c.DataDir, "patchctl.db") }
