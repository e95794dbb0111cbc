package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchctl/patchctl/cli"
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
	code, out, errOut := run(t, map[string]string{"PATCHCTL_CONFIG": cfg}, "events", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var evs []any
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		t.Fatalf("events -o json is not JSON: %v\n%s", err, out)
	}
}

// TestBashCompletionLoads checks the generated script is valid bash that completes commands.
func TestBashCompletionLoads(t *testing.T) {
	_, script, _ := run(t, nil, "completion", "bash")
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	probe := script + "\nCOMP_WORDS=(patchctl ev); COMP_CWORD=1; _patchctl; echo \"${COMPREPLY[@]}\"\n"
	out, err := exec.Command(bash, "-c", probe).CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	if strings.TrimSpace(string(out)) != "events" {
		t.Fatalf("completion of 'ev' = %q", out)
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
