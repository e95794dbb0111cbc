// Package config loads patchctl.yml: strict YAML (unknown keys and wrong types are errors
// that name the line), defaults for everything optional, then validation.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/patchctl/patchctl/internal/readfile"
	"github.com/patchctl/patchctl/internal/strictyaml"
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
	Rollouts    Rollouts      `yaml:"rollouts" json:"rollouts"`
	Retention   Retention     `yaml:"retention" json:"retention"`
	Patching    Patching      `yaml:"patching" json:"patching"`
	Shutdown    time.Duration `yaml:"shutdown_timeout" json:"shutdown_timeout"`

	// File is where the configuration was read from ("" for defaults).
	File string `yaml:"-" json:"file,omitempty"`

	doc *strictyaml.Doc // the parsed document, to name lines in errors found after loading
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
		Rollouts:  defaultRollouts(),
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
	Err   error // the cause, when the problem came from one (a secret file that cannot be read)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	return strictyaml.Format(e.File, strictyaml.Problem{Line: e.Line, Field: e.Field, Msg: e.Msg})
}

// Errors is every problem found in one file.
type Errors []*Error

// Unwrap returns every problem, so errors.As finds an *Error and errors.Is its cause.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

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

// Parse reads a configuration from r; name is used in error messages.
func Parse(name string, r io.Reader) (*Config, error) {
	data, err := readfile.All(r, name, MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg := Default()
	cfg.File = name
	doc, err := strictyaml.Parse(data, name, &cfg)
	if err != nil && !errors.Is(err, strictyaml.ErrEmpty) {
		return nil, fromStrict(err)
	}
	cfg.doc = doc
	if errs := cfg.validate(); len(errs) > 0 {
		return nil, errs
	}
	return &cfg, nil
}

// ErrorAt is a problem found after loading (for example a pinned version the store does not
// know), located at the field's line in the file.
func (c *Config) ErrorAt(field, format string, args ...any) *Error {
	return &Error{File: c.File, Line: c.doc.Line(field), Field: field, Msg: fmt.Sprintf(format, args...), Err: cause(args)}
}

// fromStrict turns the decoder's problems into configuration errors.
func fromStrict(err error) error {
	var se *strictyaml.Error
	if !errors.As(err, &se) {
		return Errors{{Msg: err.Error(), Err: err}}
	}
	errs := make(Errors, len(se.Problems))
	for i, p := range se.Problems {
		errs[i] = &Error{File: se.File, Line: p.Line, Field: p.Field, Msg: p.Msg, Err: se}
	}
	return errs
}

// cause is the last error among a message's arguments.
func cause(args []any) error {
	var err error
	for _, a := range args {
		if e, ok := a.(error); ok {
			err = e
		}
	}
	return err
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
