package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/patchctl/patchctl/internal/readfile"
)

var reRepo = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`) })

func (c *Config) validate() Errors {
	var errs Errors
	fail := func(field, format string, args ...any) {
		errs = append(errs, c.ErrorAt(field, format, args...))
	}

	if c.DataDir == "" {
		fail("data_dir", "must not be empty")
	}
	c.DataDir = c.resolvePath(c.DataDir)
	if c.Socket == "" {
		c.Socket = filepath.Join(c.DataDir, "patchctl.sock")
	} else {
		c.Socket = c.resolvePath(c.Socket)
	}
	for i, u := range c.API.AllowUsers {
		if _, err := LookupUID(u); err != nil {
			fail(fmt.Sprintf("api.allow_users[%d]", i), "%v", err)
		}
	}
	if c.SocketGroup != "" {
		if _, err := LookupGID(c.SocketGroup); err != nil {
			fail("socket_group", "%v", err)
		}
	}
	for i, g := range c.API.AllowGroups {
		if _, err := LookupGID(g); err != nil {
			fail(fmt.Sprintf("api.allow_groups[%d]", i), "%v", err)
		}
	}
	if _, err := slogLevel(c.Log.Level); err != nil {
		fail("log.level", "%v", err)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		fail("log.format", "must be text or json, not %q", c.Log.Format)
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			fail("metrics.listen", "must be host:port: %v", err)
		}
	}

	if err := checkURL(c.GitHub.APIURL); err != nil {
		fail("github.api_url", "%v", err)
	} else if !strings.HasSuffix(c.GitHub.APIURL, "/") {
		c.GitHub.APIURL += "/"
	}
	if c.GitHub.Timeout <= 0 {
		fail("github.timeout", "must be positive")
	}
	tok, err := resolveSecret(c, c.GitHub.Token, c.GitHub.TokenFile, c.GitHub.TokenEnv)
	if err != nil {
		fail(secretField("github.token", c.GitHub.TokenFile, c.GitHub.TokenEnv), "%v", err)
	}
	c.GitHub.Token = tok

	if _, err := ParseSchedule(c.Tracker.Schedule); err != nil {
		fail("tracker.schedule", "%v", err)
	}
	if c.Tracker.Jitter < 0 {
		fail("tracker.jitter", "must not be negative")
	}
	if len(c.Tracker.Sources) == 0 {
		c.Tracker.Sources = append([]Source(nil), DefaultSources...)
	}
	seen := map[string]bool{}
	for i := range c.Tracker.Sources {
		s := &c.Tracker.Sources[i]
		field := fmt.Sprintf("tracker.sources[%d]", i)
		if !reRepo().MatchString(s.Repo) {
			fail(field+".repo", "must be owner/name, not %q", s.Repo)
		}
		if seen[s.Repo] {
			fail(field+".repo", "%s is listed twice", s.Repo)
		}
		seen[s.Repo] = true
		s.Dir = c.resolvePath(s.Dir)
	}

	hook, err := resolveSecret(c, c.Slack.WebhookURL, c.Slack.WebhookURLFile, c.Slack.WebhookURLEnv)
	if err != nil {
		fail(secretField("slack.webhook_url", c.Slack.WebhookURLFile, c.Slack.WebhookURLEnv), "%v", err)
	} else if hook != "" {
		if err := checkURL(string(hook)); err != nil {
			// The URL is the secret: say what is wrong without repeating it.
			fail("slack.webhook_url", "not a valid http(s) URL")
		}
	}
	c.Slack.WebhookURL = hook
	token, err := resolveSecret(c, c.Slack.Token, c.Slack.TokenFile, c.Slack.TokenEnv)
	if err != nil {
		fail(secretField("slack.token", c.Slack.TokenFile, c.Slack.TokenEnv), "%v", err)
	}
	c.Slack.Token = token
	switch {
	case hook != "" && token != "":
		fail("slack", "set either webhook_url or token with channel, not both")
	case token != "" && c.Slack.Channel == "":
		fail("slack.channel", "is required with a bot token")
	case token == "" && c.Slack.Channel != "" && hook == "":
		fail("slack.token", "is required with a channel")
	}
	if err := checkURL(c.Slack.APIURL); err != nil {
		fail("slack.api_url", "%v", err)
	} else if !strings.HasSuffix(c.Slack.APIURL, "/") {
		c.Slack.APIURL += "/"
	}
	if c.Slack.Timeout <= 0 {
		fail("slack.timeout", "must be positive")
	}
	if c.Notify.MaxAttempts < 1 {
		fail("notify.max_attempts", "must be at least 1")
	}
	if c.Notify.MinBackoff <= 0 || c.Notify.MaxBackoff < c.Notify.MinBackoff {
		fail("notify.max_backoff", "backoffs must be positive and max_backoff >= min_backoff")
	}
	if c.Notify.Interval <= 0 {
		fail("notify.interval", "must be positive")
	}
	if c.Notify.MinGap < 0 {
		fail("notify.min_gap", "must not be negative")
	}
	if c.Notify.DigestAfter < 0 {
		fail("notify.digest_after", "must not be negative (0 never digests)")
	}
	for _, r := range []struct {
		field string
		d     time.Duration
	}{{"retention.events", c.Retention.Events}, {"retention.delivered_alerts", c.Retention.Delivered}} {
		if r.d < 0 {
			fail(r.field, "must not be negative (0 keeps everything)")
		}
	}
	// Pages in use are re-stored by the daily full re-check; a shorter retention would
	// delete them and cost full requests.
	if c.Retention.HTTPCache < 0 || c.Retention.HTTPCache > 0 && c.Retention.HTTPCache < 48*time.Hour {
		fail("retention.http_cache", "must be 0 (keep) or at least 48h")
	}
	c.validateInventory(fail)
	c.validateArtifacts(fail)
	c.validateRollouts(fail)
	c.validatePatching(fail)
	c.validateRanges(fail)
	if c.Shutdown <= 0 {
		fail("shutdown_timeout", "must be positive")
	}
	return errs
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an http(s) URL, not %q", s)
	}
	return nil
}

// maxSecretSize caps a secret file (a token or a webhook URL).
const maxSecretSize = 64 << 10

// secretField names the key a secret came from, for error messages.
func secretField(base, file, env string) string {
	switch {
	case file != "":
		return base + "_file"
	case env != "":
		return base + "_env"
	}
	return base
}

// resolveSecret takes a secret from exactly one of its value, a file, or an environment
// variable. Errors never contain the secret.
func resolveSecret(c *Config, value Secret, file, env string) (Secret, error) {
	set := 0
	for _, s := range []string{string(value), file, env} {
		if s != "" {
			set++
		}
	}
	if set > 1 {
		return "", fmt.Errorf("set only one of the value, _file and _env")
	}
	switch {
	case file != "":
		raw, err := readfile.Read(c.resolvePath(file), maxSecretSize)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		v := strings.TrimSpace(string(raw))
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty", file)
		}
		return Secret(v), nil
	case env != "":
		v := strings.TrimSpace(os.Getenv(env))
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty or unset", env)
		}
		return Secret(v), nil
	}
	return value, nil
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a 5-field cron spec or descriptor, honouring a CRON_TZ= prefix.
// robfig/cron panics on some malformed TZ= prefixes; that becomes an error here.
func ParseSchedule(spec string) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("invalid schedule %q", spec)
		}
	}()
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("must not be empty")
	}
	s, err = cronParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("invalid schedule %q: %v", spec, err)
	}
	if every, ok := s.(cron.ConstantDelaySchedule); ok && every.Delay < MinScheduleInterval {
		return nil, fmt.Errorf("schedule %q runs more often than every %v", spec, MinScheduleInterval)
	}
	return s, nil
}

// MinScheduleInterval is the shortest gap between two scheduled runs: polling GitHub or
// taking inventory more often only spends rate limit and load. A 5-field cron spec cannot
// go below it; "@every 1s" could.
const MinScheduleInterval = time.Minute

// SlogLevel returns the configured log level.
func (l Log) SlogLevel() slog.Level {
	lv, _ := slogLevel(l.Level)
	return lv
}

func slogLevel(s string) (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("must be debug, info, warn or error, not %q", s)
	}
	return lv, nil
}

// LookupUID resolves a user name or a numeric uid.
func LookupUID(name string) (int, error) {
	if id, err := strconv.Atoi(name); err == nil && id >= 0 {
		return id, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, fmt.Errorf("no user %q on this machine", name)
	}
	return strconv.Atoi(u.Uid)
}

// LookupGID resolves a group name or a numeric gid.
func LookupGID(name string) (int, error) {
	if id, err := strconv.Atoi(name); err == nil && id >= 0 {
		return id, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("no group %q on this machine", name)
	}
	return strconv.Atoi(g.Gid)
}

// uniqueNames holds the names seen so far in a list whose items are named: patching
// policies and windows, rollout policies and their waves.
type uniqueNames map[string]bool

// check fails field, an item's name, when it is empty or an earlier item has it; what
// says what the item is.
func (u uniqueNames) check(field, what, name string, fail func(field, format string, args ...any)) {
	switch {
	case name == "":
		fail(field, "is required")
	case u[name]:
		fail(field, "%s %q is defined twice", what, name)
	}
	u[name] = true
}
