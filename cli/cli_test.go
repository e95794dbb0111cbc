package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchctl/patchctl/cli"
	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/mirror"
)

// run executes one command line in-process and returns its exit code and output.
func run(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), args, cli.IO{
		In: strings.NewReader(""), Out: &out, Err: &errb,
		Getenv: func(k string) string { return env[k] },
	})
	return code, out.String(), errb.String()
}

// writeConfig writes a patchctl.yml whose state lives in a temp dir.
func writeConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "patchctl.yml")
	if err := os.WriteFile(p, []byte("data_dir: "+dir+"\nmetrics:\n  listen: ''\n"+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExitCodesAndHelp(t *testing.T) {
	cfg := writeConfig(t, "")
	bad := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(bad, []byte("colour: blue\n"), 0o600)
	cases := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"no command", nil, cli.ExitUsage, "Usage: patchctl"},
		{"unknown command", []string{"frobnicate"}, cli.ExitUsage, `unknown command "frobnicate"`},
		{"help", []string{"help"}, cli.ExitOK, "Exit codes:"},
		{"help of a command", []string{"help", "events"}, cli.ExitOK, "-kind"},
		{"--help of a command", []string{"events", "--help"}, cli.ExitOK, "Usage: patchctl events"},
		{"bad flag", []string{"events", "--nope"}, cli.ExitUsage, "flag provided but not defined"},
		{"bad output", []string{"--config", cfg, "status", "-o", "yaml"}, cli.ExitUsage, "-o must be text or json"},
		{"stray argument", []string{"--config", cfg, "status", "extra"}, cli.ExitUsage, `unexpected argument "extra"`},
		{"broken config names the line", []string{"--config", bad, "status"}, cli.ExitUsage, `bad.yml:1: unknown key "colour"`},
		{"missing explicit config", []string{"--config", "/nonexistent/p.yml", "status"}, cli.ExitUsage, "read config"},
		{"status without daemon", []string{"--config", cfg, "status"}, cli.ExitOK, "not running"},
		{"flags after args", []string{"status", "--config", cfg, "-o", "json"}, cli.ExitOK, `"daemon": false`},
		{"version", []string{"version"}, cli.ExitOK, "patchctl"},
		{"completion bash", []string{"completion", "bash"}, cli.ExitOK, "complete -F _patchctl patchctl"},
		{"completion zsh", []string{"completion", "zsh"}, cli.ExitOK, "compdef _patchctl patchctl"},
		{"completion fish", []string{"completion", "fish"}, cli.ExitOK, "complete -c patchctl"},
		{"completion unknown", []string{"completion", "tcsh"}, cli.ExitUsage, "unknown shell"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := run(t, nil, c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out, errOut)
			}
			if !strings.Contains(out+errOut, c.contains) {
				t.Fatalf("output does not contain %q\nstdout: %s\nstderr: %s", c.contains, out, errOut)
			}
		})
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	cfg := writeConfig(t, "")
	code, out, errOut := run(t, map[string]string{"PATCHCTL_CONFIG": cfg}, "status", "-o", "json")
	var st struct{ Store string }
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Store != filepath.Join(filepath.Dir(cfg), "patchctl.db") {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
}

// TestReadOnlyCommandsCreateNoState: without a daemon and a store, read-only commands say
// nothing is recorded yet and leave the data directory uncreated (as root it would end up
// owned by root and lock the daemon's user out).
func TestReadOnlyCommandsCreateNoState(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "state")
	cfg := writeFile(t, "patchctl.yml", "data_dir: "+dataDir+"\nmetrics:\n  listen: ''\n")
	for _, args := range [][]string{{"status"}, {"status", "-o", "json"}, {"releases"}, {"advisories"}, {"events"}, {"inventory"}, {"ops"}} {
		code, out, errOut := run(t, nil, append([]string{"--config", cfg}, args...)...)
		want := cli.ExitFailure
		if args[0] == "status" {
			want = cli.ExitOK
		}
		if code != want || !strings.Contains(out+errOut, "not created yet") && !strings.Contains(out+errOut, "nothing recorded yet") && !strings.Contains(out, `"daemon": false`) {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		if _, err := os.Stat(dataDir); err == nil {
			t.Fatalf("%v created %s", args, dataDir)
		}
	}
}

// TestDamagedStore: a corrupt store is reported with its path, exits 3, and is left as it was.
func TestDamagedStore(t *testing.T) {
	cfg := writeConfig(t, "")
	db := filepath.Join(filepath.Dir(cfg), "patchctl.db")
	garbage := []byte("not a bbolt file at all, but long enough to be read as one; not a bbolt file at all")
	if err := os.WriteFile(db, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, nil, "--config", cfg, "releases")
	if code != cli.ExitUnavailable || !strings.Contains(errOut, db) || !strings.Contains(errOut, "corrupt") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if after, _ := os.ReadFile(db); string(after) != string(garbage) {
		t.Fatal("the damaged store was modified")
	}
}

// TestRootWarning: only the daemon and the commands that change hosts warn about root.
func TestRootWarning(t *testing.T) {
	cfg := writeConfig(t, "")
	for _, args := range [][]string{{"status"}, {"lint", "--help"}, {"version"}, {"deploy"}} {
		_, _, errOut := run(t, nil, append([]string{"--config", cfg}, args...)...)
		want := os.Geteuid() == 0 && args[0] == "deploy"
		if got := strings.Contains(errOut, "WARNING: running as root"); got != want {
			t.Errorf("%v: root warning shown = %v as uid %d: %s", args, got, os.Geteuid(), errOut)
		}
	}
}

// TestExitCodeTable: the README's exit codes, case by case: a problem in a file the user
// wrote or in the daemon's settings is 2, naming the key and line; a command that ran and
// found a problem is 1, saying what.
func TestExitCodeTable(t *testing.T) {
	ok := "    environment: prod\n    stats: 127.0.0.1:%d\n    config: /etc/nutcracker.yml\n    transport: {type: local}\n"
	host := func(name string) string {
		return "  - name: " + name + "\n" + fmt.Sprintf(ok, testenv.FreePort(t))
	}
	withInventory := func(inv string) string {
		return writeConfig(t, "inventory:\n  file: "+writeFile(t, "inventory.yml", inv)+"\n  stats_timeout: 1s\n")
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	limited := httptest.NewServer(mirror.New(mirror.Twemproxy(), mirror.Options{RateLimit: 1}))
	defer limited.Close()
	rateLimited := writeConfig(t, "github:\n  api_url: "+limited.URL+"\n")

	cases := []struct {
		name string
		cfg  string
		args []string
		code int
		want []string // in stderr
	}{
		{"inventory: unknown key", withInventory("hosts:\n" + host("a") + "    colour: red\n"), []string{"inventory"},
			cli.ExitUsage, []string{`inventory.yml:7: hosts[0]: unknown key "colour"`}},
		{"inventory: duplicate host", withInventory("hosts:\n" + host("a") + host("a")), []string{"inventory"},
			cli.ExitUsage, []string{"inventory.yml:7: host a: duplicate name (first on line 2)"}},
		{"inventory: missing field", withInventory("hosts:\n  - name: a\n    environment: prod\n"), []string{"inventory"},
			cli.ExitUsage, []string{"inventory.yml:2: host a: stats: missing"}},
		{"inventory: wrong type", withInventory("hosts:\n" + strings.Replace(host("a"), "{type: local}", "{type: local, timeout: soon}", 1)), []string{"inventory"},
			cli.ExitUsage, []string{`hosts[0].transport.timeout: want a duration such as 30s, 5m or 1h30m, not "soon"`}},
		{"inventory: every host unreachable", withInventory("hosts:\n" + host("a") + host("b")), []string{"inventory", "--poll"},
			cli.ExitFailure, []string{"no host answered: all 2 unreachable"}},
		{"deploy: a version that is no version", writeConfig(t, ""), []string{"deploy", "--host", "a", "--version", "0.5.0;id"},
			cli.ExitUsage, []string{`--version: version "0.5.0;id": not a version`}},
		{"daemon: unknown socket_group", writeConfig(t, "socket_group: no-such-group-patchctl\n"), []string{"daemon"},
			cli.ExitUsage, []string{`socket_group: no group "no-such-group-patchctl"`}},
		{"daemon: metrics port in use", writeFile(t, "busy.yml", "data_dir: "+t.TempDir()+"\nmetrics:\n  listen: "+busy.Addr().String()+"\n"), []string{"daemon"},
			cli.ExitUsage, []string{"metrics listen " + busy.Addr().String(), "address already in use"}},
		{"config: a second document", writeFile(t, "two.yml", "log:\n  level: info\n---\nlog:\n  level: debug\n"), []string{"status"},
			cli.ExitUsage, []string{"two.yml:3: a second YAML document"}},
		{"poll: rate limited", rateLimited, []string{"poll"}, cli.ExitFailure, []string{"rate limited until 20"}},
		{"poll: deferred by the rate limit", rateLimited, []string{"poll"}, cli.ExitFailure, []string{"not polled: rate limited until 20"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := run(t, nil, append([]string{"--config", c.cfg}, c.args...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("output lacks %q\nstdout: %s\nstderr: %s", w, out, errOut)
				}
			}
			if strings.Contains(errOut, "not found in type") || strings.Contains(errOut, "cannot unmarshal") {
				t.Errorf("error names Go types: %s", errOut)
			}
		})
	}
}

// TestHelpAndDiscovery: help goes to stdout however it is asked for, groups of commands have
// help, and flags are written as the README writes them.
func TestHelpAndDiscovery(t *testing.T) {
	cases := []struct {
		args []string
		want []string // in stdout
	}{
		{[]string{"--help"}, []string{"Usage: patchctl", "routing verify", "Exit codes:"}},
		{[]string{"-h"}, []string{"Usage: patchctl"}},
		{[]string{"help"}, []string{"Usage: patchctl"}},
		{[]string{"--version"}, []string{"patchctl "}},
		{[]string{"routing", "--help"}, []string{"routing verify", "routing diff"}},
		{[]string{"check", "--help"}, []string{"check connect"}},
		{[]string{"help", "routing"}, []string{"routing verify"}},
		{[]string{"lint", "--help"}, []string{"sarif", "--target-version"}},
		{[]string{"deploy", "--help"}, []string{"--host host", "--dry-run", "change nothing on the host"}},
		{[]string{"help", "deploy"}, []string{"--host host"}},
	}
	for _, c := range cases {
		code, out, errOut := run(t, nil, c.args...)
		if code != cli.ExitOK {
			t.Errorf("%v: exit %d\n%s%s", c.args, code, out, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: stdout lacks %q\nstdout: %s\nstderr: %s", c.args, w, out, errOut)
			}
		}
		if strings.Contains(out, "\n  -host") {
			t.Errorf("%v: help shows -host, the README says --host:\n%s", c.args, out)
		}
	}
	if code, _, errOut := run(t, nil, "routing"); code != cli.ExitUsage || !strings.Contains(errOut, "routing verify") {
		t.Errorf("routing alone: exit %d %s", code, errOut)
	}
	if code, _, errOut := run(t, nil, "lint", "-o", "yaml", "x.yml"); code != cli.ExitUsage || !strings.Contains(errOut, "text, json or sarif") {
		t.Errorf("lint -o yaml: exit %d %s", code, errOut)
	}
}
