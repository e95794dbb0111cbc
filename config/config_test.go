package config_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/config"
)

func TestLoadFull(t *testing.T) {
	t.Setenv("PATCHCTL_TEST_SLACK_TOKEN", "xoxb-envtoken-0987654321")
	c, err := config.LoadFile(filepath.Join("testdata", "full.yml"))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"data_dir resolved next to the file", c.DataDir, filepath.Join("testdata", "state")},
		{"socket default under data_dir", c.Socket, filepath.Join("testdata", "state", "patchctl.sock")},
		{"api_url gets its trailing slash", c.GitHub.APIURL, "https://ghe.example.internal/api/v3/"},
		{"token from file, trimmed", c.GitHub.Token.Value(), "ghp_filetoken1234567890"},
		{"slack token from env", c.Slack.Token.Value(), "xoxb-envtoken-0987654321"},
		{"timeout", c.GitHub.Timeout, 10 * time.Second},
		{"sources", len(c.Tracker.Sources), 2},
		{"tags default true", c.Tracker.Sources[0].WantTags(), true},
		{"tags off", c.Tracker.Sources[1].WantTags(), false},
		{"default kept for absent keys", c.Notify.MaxBackoff, 10 * time.Minute},
		{"set value", c.Notify.MaxAttempts, 3},
	}
	for _, ch := range checks {
		if fmt.Sprint(ch.got) != fmt.Sprint(ch.want) {
			t.Errorf("%s: got %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestDefaultsFromEmptyFile(t *testing.T) {
	c, err := config.Parse("empty.yml", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tracker.Sources) != 1 || c.Tracker.Sources[0].Repo != "twitter/twemproxy" {
		t.Errorf("default sources = %+v", c.Tracker.Sources)
	}
	if c.Tracker.Schedule != "0 */6 * * *" || c.Slack.Enabled() {
		t.Errorf("defaults = %+v", c)
	}
}

func TestErrorsNameTheLine(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       string // substring of the error, with file:line
	}{
		{"unknown top key", "data_dir: x\ncolour: blue\n", `bad.yml:2: unknown key "colour"`},
		{"unknown nested key", "tracker:\n  schedule: '@daily'\n  sources:\n    - repo: a/b\n      tag: true\n", `bad.yml:5: tracker.sources[0]: unknown key "tag"`},
		{"wrong type", "notify:\n  max_attempts: lots\n", `bad.yml:2: notify.max_attempts: want a whole number, not "lots"`},
		{"bad duration", "github:\n  timeout: soon\n", `bad.yml:2: github.timeout: want a duration such as 30s, 5m or 1h30m, not "soon"`},
		{"second document", "data_dir: x\n---\ncolour: blue\n", "bad.yml:2: a second YAML document"},
		{"syntax", "tracker:\n  schedule: [\n", "bad.yml:"},
		{"bad cron", "tracker:\n  schedule: '61 * * * *'\n", "bad.yml:2: tracker.schedule: invalid schedule"},
		{"cron TZ panic", "tracker:\n  schedule: 'TZ=0'\n", "bad.yml:2: tracker.schedule: invalid schedule"},
		{"cron bad zone", "tracker:\n  schedule: 'CRON_TZ=Mars/Olympus 0 * * * *'\n", "bad.yml:2: tracker.schedule"},
		{"cron empty", "tracker:\n  schedule: ''\n", "bad.yml:2: tracker.schedule: must not be empty"},
		{"bad repo", "tracker:\n  sources:\n    - repo: twemproxy\n", `bad.yml:3: tracker.sources[0].repo: must be owner/name`},
		{"duplicate repo", "tracker:\n  sources:\n    - repo: a/b\n    - repo: a/b\n", `bad.yml:4: tracker.sources[1].repo: a/b is listed twice`},
		{"unreadable token file", "github:\n  token_file: /nonexistent/token\n", "bad.yml:2: github.token_file: read secret file"},
		{"empty env secret", "github:\n  token_env: PATCHCTL_TEST_UNSET_VAR\n", "github.token_env: environment variable PATCHCTL_TEST_UNSET_VAR is empty or unset"},
		{"two secret forms", "github:\n  token: abc\n  token_env: HOME\n", "github.token_env: set only one"},
		{"webhook and bot", "slack:\n  webhook_url: https://hooks.example/x\n  token: xoxb-1\n  channel: c\n", "bad.yml:1: slack: set either webhook_url"},
		{"bot without channel", "slack:\n  token: xoxb-1\n", "slack.channel: is required"},
		{"bad log level", "log:\n  level: loud\n", "bad.yml:2: log.level"},
		{"bad metrics", "metrics:\n  listen: nonsense\n", "bad.yml:2: metrics.listen"},
		{"bad artifact source", "artifacts:\n  sources:\n    - kind: zip\n      path: /x\n", "bad.yml:3: artifacts.sources[0]: kind"},
		{"bad inventory schedule", "inventory:\n  schedule: 'often'\n", "bad.yml:2: inventory.schedule"},
		{"bad api url", "github:\n  api_url: ftp://x\n", "bad.yml:2: github.api_url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Parse("bad.yml", strings.NewReader(c.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want config.Errors", err)
			}
			var one *config.Error
			if !errors.As(err, &one) || one.File != "bad.yml" {
				t.Fatalf("errors.As(*config.Error) = %v", one)
			}
			for _, internal := range []string{"time.Duration", "config.", "!!", "not found in type"} {
				if strings.Contains(err.Error(), internal) {
					t.Errorf("error names Go or YAML internals (%q): %v", internal, err)
				}
			}
		})
	}
}

// TestErrorsUnwrapToTheirCause: a problem caused by an error (a secret file that cannot be
// read) unwraps to it.
func TestErrorsUnwrapToTheirCause(t *testing.T) {
	_, err := config.Parse("bad.yml", strings.NewReader("github:\n  token_file: /nonexistent/token\n"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("errors.Is(err, os.ErrNotExist) = false for %v", err)
	}
}

func TestAllErrorsAtOnce(t *testing.T) {
	_, err := config.Parse("bad.yml", strings.NewReader("log:\n  level: loud\n  format: xml\nnotify:\n  max_attempts: 0\n"))
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("got %v, want 3 errors", err)
	}
}

// TestSecretsNeverPrinted: a loaded configuration can be printed, dumped as JSON, or end up in
// an error without revealing a token or webhook URL.
func TestSecretsNeverPrinted(t *testing.T) {
	const hook = "https://hooks.slack.example/services/T000/B000/XXXXSECRETXXXX"
	const tok = "ghp_verysecrettoken_abcdef"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hook"), []byte(hook+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATCHCTL_TEST_GH", tok)
	c, err := config.Parse(filepath.Join(dir, "p.yml"), strings.NewReader("github:\n  token_env: PATCHCTL_TEST_GH\nslack:\n  webhook_url_file: hook\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Slack.WebhookURL.Value() != hook || c.GitHub.Token.Value() != tok {
		t.Fatal("secrets not resolved")
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), string(js),
		fmt.Sprint(c.GitHub.Token), c.Slack.WebhookURL.String()} {
		if strings.Contains(out, tok) || strings.Contains(out, "XXXXSECRETXXXX") {
			t.Fatalf("secret printed: %s", out)
		}
	}
	// A malformed webhook URL is reported without repeating it.
	_, err = config.Parse("p.yml", strings.NewReader("slack:\n  webhook_url: 'not a url SECRETPART'\n"))
	if err == nil || strings.Contains(err.Error(), "SECRETPART") {
		t.Fatalf("error = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "data_dir: x\n", "tracker:\n  schedule: 'TZ=0'\n", "a: [\n", "tracker:\n  sources:\n    - repo: a/b\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := config.Parse("f.yml", strings.NewReader(s))
		if (c == nil) == (err == nil) {
			t.Fatalf("config %v and error %v", c, err)
		}
	})
}

// TestExampleParses keeps the documented example loadable.
func TestExampleParses(t *testing.T) {
	c, err := config.LoadFile(filepath.Join("..", "configs", "patchctl.example.yml"))
	if err != nil {
		t.Fatal(err)
	}
	def, _ := config.Parse("defaults", strings.NewReader(""))
	if c.Tracker.Schedule != def.Tracker.Schedule || c.Notify != def.Notify || c.GitHub.APIURL != def.GitHub.APIURL {
		t.Errorf("the example's values differ from the defaults it documents")
	}
}
