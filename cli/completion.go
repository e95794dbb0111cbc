package cli

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
)

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

// words returns the first words of every command, the second words per first word, and the
// flags of every command, all generated from the command table.
func words() (top []string, sub map[string][]string, flags map[string][]string) {
	sub, flags = map[string][]string{}, map[string][]string{}
	seen := map[string]bool{}
	for _, sp := range commands {
		f := strings.Fields(sp.name)
		if !seen[f[0]] {
			top = append(top, f[0])
			seen[f[0]] = true
		}
		if len(f) == 2 {
			sub[f[0]] = append(sub[f[0]], f[1])
		}
		fs := flag.NewFlagSet(sp.name, flag.ContinueOnError)
		env := &Env{}
		env.globalFlags(fs)
		sp.build(env, fs)
		fs.VisitAll(func(fl *flag.Flag) { flags[sp.name] = append(flags[sp.name], "--"+fl.Name) })
	}
	sort.Strings(top)
	return top, sub, flags
}

func (c *completionCmd) Run(context.Context) error {
	top, sub, flags := words()
	w := c.env.Out
	switch c.shell {
	case "bash":
		fmt.Fprintf(w, "# bash completion for patchctl; load with: source <(patchctl completion bash)\n_patchctl() {\n")
		fmt.Fprintf(w, "  local cur=${COMP_WORDS[COMP_CWORD]} c1=${COMP_WORDS[1]} c2=${COMP_WORDS[2]}\n")
		fmt.Fprintf(w, "  if [ \"$COMP_CWORD\" -eq 1 ]; then COMPREPLY=($(compgen -W %q -- \"$cur\")); return; fi\n", strings.Join(top, " "))
		fmt.Fprintf(w, "  case \"$c1\" in\n")
		for _, t := range top {
			if s, ok := sub[t]; ok {
				fmt.Fprintf(w, "    %s) if [ \"$COMP_CWORD\" -eq 2 ]; then COMPREPLY=($(compgen -W %q -- \"$cur\")); return; fi;;\n", t, strings.Join(s, " "))
			}
		}
		fmt.Fprintf(w, "  esac\n  case \"$cur\" in -*)\n    case \"$c1 $c2\" in\n")
		names := make([]string, 0, len(flags))
		for n := range flags {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			pattern := n
			if !strings.Contains(n, " ") {
				pattern = n + " *"
			}
			fmt.Fprintf(w, "      %q) COMPREPLY=($(compgen -W %q -- \"$cur\"));;\n", pattern, strings.Join(flags[n], " "))
		}
		fmt.Fprintf(w, "    esac;;\n  *) COMPREPLY=($(compgen -f -- \"$cur\"));;\n  esac\n}\ncomplete -F _patchctl patchctl\n")
	case "zsh":
		fmt.Fprintf(w, "#compdef patchctl\n# zsh completion for patchctl; load with: source <(patchctl completion zsh)\n")
		fmt.Fprintf(w, "_patchctl() {\n  if (( CURRENT == 2 )); then compadd -- %s; return; fi\n  case $words[2] in\n", strings.Join(top, " "))
		for _, t := range top {
			if s, ok := sub[t]; ok {
				fmt.Fprintf(w, "    %s) if (( CURRENT == 3 )); then compadd -- %s; return; fi;;\n", t, strings.Join(s, " "))
			}
		}
		fmt.Fprintf(w, "  esac\n  _files\n}\ncompdef _patchctl patchctl\n")
	case "fish":
		fmt.Fprintf(w, "# fish completion for patchctl\ncomplete -c patchctl -f -n '__fish_use_subcommand' -a %q\n", strings.Join(top, " "))
		for _, t := range top {
			if s, ok := sub[t]; ok {
				fmt.Fprintf(w, "complete -c patchctl -f -n '__fish_seen_subcommand_from %s' -a %q\n", t, strings.Join(s, " "))
			}
		}
	default:
		return usagef("unknown shell %q: want bash, zsh or fish", c.shell)
	}
	return nil
}
