package cli_test

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchctl/patchctl/cli"
	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/mirror"
)

// TestCompletionInRealShells loads each generated script into a real bash, zsh and fish and
// completes commands, flags, host names from the inventory and versions from the store.
func TestCompletionInRealShells(t *testing.T) {
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "patchctl"), "../cmd/patchctl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	inv := writeFile(t, "inventory.yml", `hosts:
  - {name: alpha, environment: prod, stats: 127.0.0.1:1, config: /etc/n.yml, transport: {type: local}}
  - {name: beta, environment: prod, stats: 127.0.0.1:2, config: /etc/n.yml, transport: {type: local}}
`)
	gh := httptest.NewServer(mirror.New(mirror.Twemproxy(), mirror.Options{}))
	defer gh.Close()
	cfg := writeConfig(t, "github:\n  api_url: "+gh.URL+"\ninventory:\n  file: "+inv+"\n")
	if code, out, errOut := run(t, nil, "--config", cfg, "poll"); code != cli.ExitOK {
		t.Fatalf("poll: exit %d %s%s", code, out, errOut)
	}

	// Each case: the words typed (the last one being completed) and what must be offered.
	type want struct {
		words []string
		has   []string
		not   []string
	}
	cases := []want{
		{[]string{"patchctl", "rout"}, []string{"routing"}, nil},
		{[]string{"patchctl", "routing", "v"}, []string{"verify"}, []string{"diff"}},
		{[]string{"patchctl", "deploy", "--ho"}, []string{"--host"}, nil},
		{[]string{"patchctl", "lint", "--t"}, []string{"--target-version"}, nil},
		{[]string{"patchctl", "--config", cfg, "deploy", "--host", ""}, []string{"alpha", "beta"}, nil},
		{[]string{"patchctl", "--config", cfg, "deploy", "--host", "alpha", "--version", "0.4"}, []string{"0.4.1", "0.4.0"}, []string{"0.5.0", "alpha"}},
	}
	env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	shells := map[string]func(script string, words []string) string{
		"bash": func(script string, words []string) string {
			return script + "\nCOMP_WORDS=(" + quoteAll(words) + "); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _patchctl; printf '%s\\n' \"${COMPREPLY[@]}\"\n"
		},
		// compadd and _files exist only inside zsh's completion system: stand-ins print what
		// the function offers (zsh's matcher would then filter by the typed prefix).
		"zsh": func(script string, words []string) string {
			return "compadd() { if [[ $1 == -a ]]; then print -rl -- ${(P)2}; else [[ $1 == -- ]] && shift; print -rl -- \"$@\"; fi }\n" +
				"compdef() { }\n_files() { print FILES }\n" + script +
				"\nwords=(" + quoteAll(words) + "); CURRENT=${#words}; _patchctl\n"
		},
		"fish": func(script string, words []string) string {
			return script + "\ncomplete -C" + fishQuote(strings.Join(words, " ")) + "\n"
		},
	}
	for shell, probe := range shells {
		t.Run(shell, func(t *testing.T) {
			path := testenv.LookPath(t, shell)
			code, script, errOut := run(t, nil, "completion", shell)
			if code != cli.ExitOK {
				t.Fatalf("completion %s: exit %d %s", shell, code, errOut)
			}
			for _, c := range cases {
				cmd := exec.Command(path, "-c", probe(script, c.words))
				cmd.Env = env
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("%s %v: %v\n%s", shell, c.words, err, out)
				}
				offered := map[string]bool{}
				for _, line := range strings.Split(string(out), "\n") {
					word, _, _ := strings.Cut(line, "\t") // fish adds a description
					offered[strings.TrimSpace(word)] = true
				}
				for _, h := range c.has {
					if !offered[h] {
						t.Errorf("%s %q: %q not offered; got:\n%s", shell, c.words, h, out)
					}
				}
				for _, n := range c.not {
					if offered[n] && shell != "zsh" { // zsh filters by prefix after the function
						t.Errorf("%s %q: %q offered; got:\n%s", shell, c.words, n, out)
					}
				}
			}
		})
	}
}

func quoteAll(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

func fishQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }
