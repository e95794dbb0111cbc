package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/patchctl/patchctl/app"
	"github.com/patchctl/patchctl/inventory"
	"github.com/patchctl/patchctl/rollout"
)

// Value completion: the shell scripts call the hidden `patchctl __complete -- WORDS...` with
// the words typed so far; it answers the candidates for the next word, one per line, from the
// inventory file, the daemon or the store. A new kind of value (rollout ids, ...) is one
// entry in completers plus the flags or commands it fills in flagValues or argValues.
type completer func(ctx context.Context, env *Env, line completionLine) ([]string, error)

var completers = map[string]completer{
	"hosts":    completeHosts,
	"versions": completeVersions,
	"slots":    completeSlots,
	"ops":      completeOps,
}

// flagValues names the completer of each flag's value.
var flagValues = map[string]string{"host": "hosts", "version": "versions", "to": "slots"}

// argValues names the completer of a command's positional arguments.
var argValues = map[string]string{"attach": "ops", "abort": "ops"}

// completionLine is what has been typed: the command, and the flags given so far.
type completionLine struct {
	command string
	flags   map[string]string
	last    string // the word before the one being completed
}

func parseLine(words []string) completionLine {
	l := completionLine{flags: map[string]string{}}
	var pos []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		if name, ok := strings.CutPrefix(strings.TrimPrefix(w, "-"), "-"); ok || strings.HasPrefix(w, "-") {
			if !ok {
				name = strings.TrimPrefix(w, "-")
			}
			if k, v, ok := strings.Cut(name, "="); ok {
				l.flags[k] = v
			} else if i+1 < len(words) {
				l.flags[name] = words[i+1]
				i++
			}
			continue
		}
		pos = append(pos, w)
	}
	if sp, _ := lookup(pos); sp != nil {
		l.command = sp.name
	}
	if len(words) > 0 {
		l.last = words[len(words)-1]
	}
	return l
}

type completeCmd struct {
	env   *Env
	words []string
}

func (c *completeCmd) SetArgs(args []string) error { c.words = args; return nil }

// Run prints the candidates; it never fails loudly, a shell has nowhere to show an error.
func (c *completeCmd) Run(ctx context.Context) error {
	line := parseLine(c.words)
	if cfg, ok := line.flags["config"]; ok {
		c.env.ConfigPath = cfg
	}
	kind := ""
	if strings.HasPrefix(line.last, "-") {
		kind = flagValues[strings.TrimLeft(line.last, "-")]
	} else {
		kind = argValues[line.command]
	}
	fn := completers[kind]
	if fn == nil {
		return nil
	}
	vals, err := fn(ctx, c.env, line)
	if err != nil {
		return nil
	}
	for _, v := range vals {
		fmt.Fprintln(c.env.Out, v)
	}
	return nil
}

func completeHosts(_ context.Context, env *Env, _ completionLine) ([]string, error) {
	cfg, err := env.Config()
	if err != nil || cfg.Inventory.File == "" {
		return nil, err
	}
	inv, err := inventory.Load(cfg.Inventory.File)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(inv.Hosts))
	for i, h := range inv.Hosts {
		names[i] = h.Name
	}
	return names, nil
}

func completeVersions(ctx context.Context, env *Env, _ completionLine) ([]string, error) {
	var list app.ReleaseList
	if err := env.call(ctx, "releases", app.ReleasesArgs{}, &list); err != nil {
		return nil, err
	}
	var out []string
	for _, r := range list.Releases {
		if !slices.Contains(out, r.Version) {
			out = append(out, r.Version)
		}
	}
	return out, nil
}

// completeSlots offers the slots of the host given with --host, and their versions.
func completeSlots(ctx context.Context, env *Env, line completionLine) ([]string, error) {
	host := line.flags["host"]
	if host == "" {
		return nil, nil
	}
	var st rollout.HostState
	if err := env.call(ctx, "slots", app.HostArgs{Host: host}, &st); err != nil {
		return nil, err
	}
	var out []string
	for _, s := range st.Slots {
		out = append(out, s.Name)
		if !slices.Contains(out, s.Version) {
			out = append(out, s.Version)
		}
	}
	return out, nil
}

func completeOps(ctx context.Context, env *Env, _ completionLine) ([]string, error) {
	var ops []app.OpInfo
	if err := env.call(ctx, "ops", struct{}{}, &ops); err != nil {
		return nil, err
	}
	out := make([]string, len(ops))
	for i, o := range ops {
		out[i] = o.ID
	}
	return out, nil
}

type completionCmd struct {
	env   *Env
	shell string
}

func (c *completionCmd) SetArgs(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("want one shell: bash, zsh or fish")
	}
	c.shell = args[0]
	return nil
}

// grammar is what the scripts are generated from: the command table.
type grammar struct {
	top        []string            // first words
	sub        map[string][]string // second words per first word
	flags      map[string][]string // "--flag" per command name
	valueFlags []string            // "--flag" whose value is completed by patchctl itself
	argCmds    []string            // first words whose arguments are completed by patchctl
}

func commandGrammar() grammar {
	g := grammar{sub: map[string][]string{}, flags: map[string][]string{}}
	seen := map[string]bool{}
	for _, sp := range commands {
		if sp.hidden {
			continue
		}
		f := strings.Fields(sp.name)
		if !seen[f[0]] {
			g.top = append(g.top, f[0])
			seen[f[0]] = true
		}
		if len(f) == 2 {
			g.sub[f[0]] = append(g.sub[f[0]], f[1])
		}
		fs := flag.NewFlagSet(sp.name, flag.ContinueOnError)
		env := &Env{}
		env.globalFlags(fs)
		sp.build(env, fs)
		fs.VisitAll(func(fl *flag.Flag) {
			g.flags[sp.name] = append(g.flags[sp.name], dashes(fl.Name))
			if _, ok := flagValues[fl.Name]; ok && !slices.Contains(g.valueFlags, dashes(fl.Name)) {
				g.valueFlags = append(g.valueFlags, dashes(fl.Name))
			}
		})
		if _, ok := argValues[sp.name]; ok {
			g.argCmds = append(g.argCmds, sp.name)
		}
	}
	sort.Strings(g.top)
	sort.Strings(g.valueFlags)
	return g
}

func dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

func (c *completionCmd) Run(context.Context) error {
	g := commandGrammar()
	switch c.shell {
	case "bash":
		g.caseScript(c.env.Out, bashShell)
	case "zsh":
		g.caseScript(c.env.Out, zshShell)
	case "fish":
		g.fish(c.env.Out)
	default:
		return usagef("unknown shell %q: want bash, zsh or fish", c.shell)
	}
	return nil
}

// casePattern matches "$c1 $c2" in a shell case: a one-word command is followed by anything.
func casePattern(name string) string {
	if strings.Contains(name, " ") {
		return fmt.Sprintf("%q", name)
	}
	return fmt.Sprintf("%q*", name+" ")
}

func (g grammar) names() []string {
	names := make([]string, 0, len(g.flags))
	for n := range g.flags {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// caseShell is a completion script made of one function of nested case statements (bash,
// zsh): the formats of its parts, filled from the grammar by caseScript.
type caseShell struct {
	ask       string // the command line that asks patchctl __complete for values
	head      string
	values    string // value flags ("a|b"), ask
	top       string // top-level commands
	sub       string // a command, its subcommands
	flagsHead string
	flag      string // a casePattern, its flags
	flagsEnd  string
	args      string // commands that take values as arguments ("a|b"), ask
	tail      string
}

var bashShell = caseShell{
	ask: `$(patchctl __complete -- "${COMP_WORDS[@]:1:COMP_CWORD-1}" 2>/dev/null)`,
	head: "# bash completion for patchctl; load with: source <(patchctl completion bash)\n_patchctl() {\n" +
		"  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} c1=${COMP_WORDS[1]} c2=${COMP_WORDS[2]}\n",
	values:    "  case \"$prev\" in %s) COMPREPLY=($(compgen -W \"%s\" -- \"$cur\")); return;; esac\n",
	top:       "  if [ \"$COMP_CWORD\" -eq 1 ]; then COMPREPLY=($(compgen -W %q -- \"$cur\")); return; fi\n  case \"$c1\" in\n",
	sub:       "    %s) if [ \"$COMP_CWORD\" -eq 2 ]; then COMPREPLY=($(compgen -W %q -- \"$cur\")); return; fi;;\n",
	flagsHead: "  esac\n  case \"$cur\" in -*)\n    case \"$c1 $c2\" in\n",
	flag:      "      %s) COMPREPLY=($(compgen -W %q -- \"$cur\"));;\n",
	flagsEnd:  "    esac;;\n  *) case \"$c1\" in\n",
	args:      "      %s) COMPREPLY=($(compgen -W \"%s\" -- \"$cur\"));;\n",
	tail:      "      *) COMPREPLY=($(compgen -f -- \"$cur\"));;\n    esac;;\n  esac\n}\ncomplete -F _patchctl patchctl\n",
}

var zshShell = caseShell{
	ask:       `vals=(${(f)"$(patchctl __complete -- ${words[2,CURRENT-1]} 2>/dev/null)"}); compadd -a vals`,
	head:      "#compdef patchctl\n# zsh completion for patchctl; load with: source <(patchctl completion zsh)\n_patchctl() {\n  local -a vals\n",
	values:    "  case $words[CURRENT-1] in %s) %s; return;; esac\n",
	top:       "  if (( CURRENT == 2 )); then compadd -- %s; return; fi\n  case $words[2] in\n",
	sub:       "    %s) if (( CURRENT == 3 )); then compadd -- %s; return; fi;;\n",
	flagsHead: "  esac\n  if [[ $words[CURRENT] == -* ]]; then\n    case \"$words[2] $words[3]\" in\n",
	flag:      "      %s) compadd -- %s;;\n",
	flagsEnd:  "    esac\n    return\n  fi\n",
	args:      "  case $words[2] in %s) %s; return;; esac\n",
	tail:      "  _files\n}\ncompdef _patchctl patchctl\n",
}

func (g grammar) caseScript(w io.Writer, sh caseShell) {
	fmt.Fprint(w, sh.head)
	fmt.Fprintf(w, sh.values, strings.Join(g.valueFlags, "|"), sh.ask)
	fmt.Fprintf(w, sh.top, strings.Join(g.top, " "))
	for _, t := range g.top {
		if s, ok := g.sub[t]; ok {
			fmt.Fprintf(w, sh.sub, t, strings.Join(s, " "))
		}
	}
	fmt.Fprint(w, sh.flagsHead)
	for _, n := range g.names() {
		fmt.Fprintf(w, sh.flag, casePattern(n), strings.Join(g.flags[n], " "))
	}
	fmt.Fprint(w, sh.flagsEnd)
	if len(g.argCmds) > 0 {
		fmt.Fprintf(w, sh.args, strings.Join(g.argCmds, "|"), sh.ask)
	}
	fmt.Fprint(w, sh.tail)
}

func (g grammar) fish(w io.Writer) {
	ask := `(patchctl __complete -- (commandline -opc)[2..-1] 2>/dev/null)`
	fmt.Fprintf(w, "# fish completion for patchctl; load with: patchctl completion fish | source\n")
	fmt.Fprintf(w, "complete -c patchctl -f\ncomplete -c patchctl -n '__fish_use_subcommand' -a %q\n", strings.Join(g.top, " "))
	for _, t := range g.top {
		if s, ok := g.sub[t]; ok {
			fmt.Fprintf(w, "complete -c patchctl -n '__fish_seen_subcommand_from %s; and not __fish_seen_subcommand_from %s' -a %q\n", t, strings.Join(s, " "), strings.Join(s, " "))
		}
	}
	for _, n := range g.names() {
		f := strings.Fields(n)
		cond := "__fish_seen_subcommand_from " + f[0]
		if len(f) == 2 {
			cond += "; and __fish_seen_subcommand_from " + f[1]
		}
		for _, fl := range g.flags[n] {
			opt := "-l " + strings.TrimPrefix(fl, "--")
			if !strings.HasPrefix(fl, "--") {
				opt = "-s " + strings.TrimPrefix(fl, "-")
			}
			if slices.Contains(g.valueFlags, fl) {
				opt += " -x -a '" + ask + "'"
			}
			fmt.Fprintf(w, "complete -c patchctl -n '%s' %s\n", cond, opt)
		}
	}
	if len(g.argCmds) > 0 {
		fmt.Fprintf(w, "complete -c patchctl -n '__fish_seen_subcommand_from %s' -a '%s'\n", strings.Join(g.argCmds, " "), ask)
	}
	// Commands that take files.
	fmt.Fprintf(w, "complete -c patchctl -n '__fish_seen_subcommand_from lint check routing' -F\n")
}
