// Package cli holds patchctl's subcommands. Each is a small type with Run(ctx); Main parses
// the command line, runs one, and maps its error to an exit code.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/store"
)

// Exit codes, documented in README.md and `patchctl help`.
const (
	ExitOK          = 0 // success
	ExitFailure     = 1 // the command ran and found a problem (lint errors, unreachable hosts, failed deploy)
	ExitUsage       = 2 // bad flags, arguments or configuration
	ExitUnavailable = 3 // the store is locked and no daemon answers, or the store is damaged
)

// IO is where a command reads and writes.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
	Getenv   func(string) string
}

// Stdio is the process's own standard streams and environment.
func Stdio() IO { return IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv} }

// Env is what every command shares: streams, global flags, and lazily loaded configuration.
type Env struct {
	IO
	ConfigPath string
	Output     string // text or json
	LogLevel   string
	cfg        *config.Config
}

// Config loads the configuration once. A missing file at the default location means defaults.
func (e *Env) Config() (*config.Config, error) {
	if e.cfg != nil {
		return e.cfg, nil
	}
	path := e.ConfigPath
	explicit := path != ""
	if !explicit {
		path = e.Getenv("PATCHCTL_CONFIG")
		explicit = path != ""
	}
	if !explicit {
		path = DefaultConfigPath
	}
	cfg, err := config.LoadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			cfg, err = config.Parse("(defaults)", strings.NewReader(""))
		}
		if err != nil {
			return nil, usageErr(err)
		}
	}
	e.cfg = cfg
	return cfg, nil
}

// Logger writes to stderr at the configured level (flag over file).
func (e *Env) Logger() *slog.Logger {
	level := e.LogLevel
	format := "text"
	if e.cfg != nil {
		if level == "" {
			level = e.cfg.Log.Level
		}
		format = e.cfg.Log.Format
	}
	var lv slog.Level
	if level == "" || lv.UnmarshalText([]byte(level)) != nil {
		lv = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(e.Err, opts))
	}
	return slog.New(slog.NewTextHandler(e.Err, opts))
}

// DefaultConfigPath is read when neither --config nor PATCHCTL_CONFIG is given.
const DefaultConfigPath = "/etc/patchctl/patchctl.yml"

// Command is one subcommand, ready to run once its flags are parsed.
type Command interface {
	Run(ctx context.Context) error
}

// spec describes a subcommand for dispatch, help and completion.
type spec struct {
	name     string // may have two words: "notify test"
	args     string // positional arguments, for usage
	synopsis string
	// build returns the command with its flags registered on fs.
	build func(env *Env, fs *flag.FlagSet) Command
	// privileged commands run the daemon or change hosts: only they warn when run as root.
	privileged bool
	// hidden commands are for the completion scripts, not for people.
	hidden bool
}

// usageError makes Main exit 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usageErr(err error) error { return usageError{err} }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// errFailed makes Main exit 1 without printing anything more (the command already
// reported); errReportedUsage does the same with exit 2.
var (
	errFailed        = errors.New("failed")
	errReportedUsage = errors.New("bad arguments")
)

// Main runs one command line and returns the exit code.
func Main(ctx context.Context, args []string, io IO) int {
	if io.Getenv == nil {
		io.Getenv = os.Getenv
	}
	env := &Env{IO: io}
	global := flag.NewFlagSet("patchctl", flag.ContinueOnError)
	global.SetOutput(io.Err)
	env.globalFlags(global)
	showVersion := global.Bool("version", false, "print patchctl's version and exit")
	global.Usage = func() {}
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(io.Out)
			return ExitOK
		}
		fmt.Fprintln(io.Err, "Run 'patchctl help' for the list of commands.")
		return ExitUsage
	}
	if *showVersion {
		return exitCode(env, "version", (&versionCmd{env: env}).Run(ctx))
	}
	rest := global.Args()
	if len(rest) == 0 {
		printUsage(io.Err)
		return ExitUsage
	}
	sp, n := lookup(rest)
	if sp == nil {
		if group := subcommands(rest[0]); len(group) > 0 {
			// "patchctl routing" alone or with --help: list the group's commands.
			if len(rest) > 1 && isHelpFlag(rest[1]) {
				printGroupUsage(io.Out, rest[0], group)
				return ExitOK
			}
			printGroupUsage(io.Err, rest[0], group)
			return ExitUsage
		}
		fmt.Fprintf(io.Err, "patchctl: unknown command %q\nRun 'patchctl help' for the list of commands.\n", strings.Join(rest[:min(2, len(rest))], " "))
		return ExitUsage
	}
	fs := flag.NewFlagSet("patchctl "+sp.name, flag.ContinueOnError)
	fs.SetOutput(io.Err)
	env.globalFlags(fs)
	cmd := sp.build(env, fs)
	fs.Usage = func() {}
	if err := fs.Parse(interleave(fs, rest[n:])); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandUsage(io.Out, sp, fs)
			return ExitOK
		}
		fmt.Fprintf(io.Err, "Run 'patchctl %s --help' for its flags.\n", sp.name)
		return ExitUsage
	}
	if !validOutput(sp.name, env.Output) {
		formats := outputFormats(sp.name)
		return exitCode(env, sp.name, usagef("-o must be %s or %s, not %q", strings.Join(formats[:len(formats)-1], ", "), formats[len(formats)-1], env.Output))
	}
	if pa, ok := cmd.(interface{ SetArgs([]string) error }); ok {
		if err := pa.SetArgs(fs.Args()); err != nil {
			return exitCode(env, sp.name, usageErr(err))
		}
	} else if fs.NArg() > 0 {
		return exitCode(env, sp.name, usagef("unexpected argument %q", fs.Arg(0)))
	}
	if sp.privileged {
		warnIfRoot(io.Err)
	}
	return exitCode(env, sp.name, cmd.Run(ctx))
}

func isHelpFlag(a string) bool { return a == "-h" || a == "-help" || a == "--help" || a == "--h" }

// outputFormats are the -o values a command accepts: lint also writes SARIF.
func outputFormats(command string) []string {
	if command == "lint" {
		return []string{"text", "json", "sarif"}
	}
	return []string{"text", "json"}
}

func validOutput(command, o string) bool { return slices.Contains(outputFormats(command), o) }

func (e *Env) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&e.ConfigPath, "config", e.ConfigPath, "configuration `file` (default $PATCHCTL_CONFIG or "+DefaultConfigPath+")")
	if e.Output == "" {
		e.Output = "text"
	}
	fs.StringVar(&e.Output, "o", e.Output, "output `format`: text or json (lint: also sarif)")
	fs.StringVar(&e.LogLevel, "log-level", e.LogLevel, "log `level`: debug, info, warn, error")
}

// interleave lets flags follow positional arguments (`lint a.yml -o json`), as people type them.
func interleave(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil && i+1 < len(args) {
			if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !bf.IsBoolFlag() {
				flags = append(flags, args[i+1])
				i++
			}
		}
	}
	return append(append(flags, "--"), pos...)
}

// exitCode maps a command's error to its exit code and reports it: on stderr always, and
// with -o json also as {"error": ..., "exit_code": ...} on stdout, so a script reading stdout
// sees why a command failed. errFailed means the command already reported its problem.
func exitCode(env *Env, name string, err error) int {
	if err == nil {
		return ExitOK
	}
	code := ExitFailure
	var ue usageError
	switch {
	case errors.Is(err, errFailed):
		return ExitFailure
	case errors.Is(err, errReportedUsage):
		return ExitUsage
	case errors.As(err, &ue), isConfigError(err):
		code = ExitUsage
	case errors.Is(err, store.ErrLocked), errors.Is(err, store.ErrCorrupt), errors.Is(err, store.ErrTooNew), errors.Is(err, errNoDaemon):
		code = ExitUnavailable
	case errors.Is(err, context.Canceled):
		err = errors.New("interrupted")
	}
	msg := env.message(name, err)
	fmt.Fprintf(env.Err, "patchctl %s: %s\n", name, msg)
	if env.Output == "json" {
		env.writeJSON(errorJSON{Error: msg, ExitCode: code})
	}
	return code
}

// errorJSON is what a failed command writes to stdout with -o json.
type errorJSON struct {
	Error    string `json:"error"`
	ExitCode int    `json:"exit_code"`
}

func lookup(args []string) (*spec, int) {
	if len(args) >= 2 {
		two := args[0] + " " + args[1]
		for i := range commands {
			if commands[i].name == two {
				return &commands[i], 2
			}
		}
	}
	for i := range commands {
		if commands[i].name == args[0] {
			return &commands[i], 1
		}
	}
	return nil, 0
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "patchctl keeps fleets of twemproxy (nutcracker) patched safely.\n\nUsage: patchctl [--config FILE] COMMAND [flags] [args]\n       patchctl --version\n\nCommands:\n")
	width := 0
	for _, c := range commands {
		width = max(width, len(c.name))
	}
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.synopsis)
		}
	}
	fmt.Fprintf(w, "\nRun 'patchctl COMMAND --help' for a command's flags.\n\n%s", exitCodeHelp)
}

// subcommands returns the two-word commands whose first word is group ("routing").
func subcommands(group string) []*spec {
	var out []*spec
	for i := range commands {
		if first, _, ok := strings.Cut(commands[i].name, " "); ok && first == group {
			out = append(out, &commands[i])
		}
	}
	return out
}

func printGroupUsage(w io.Writer, group string, specs []*spec) {
	fmt.Fprintf(w, "Usage: patchctl %s COMMAND [flags] [args]\n\nCommands:\n", group)
	for _, sp := range specs {
		fmt.Fprintf(w, "  %-16s  %s\n", sp.name, sp.synopsis)
	}
	fmt.Fprintf(w, "\nRun 'patchctl %s COMMAND --help' for a command's flags.\n", group)
}

const exitCodeHelp = `Exit codes:
  0  success
  1  the command ran and found a problem (lint errors, unreachable servers, failed deploy)
  2  bad flags, arguments or configuration
  3  the store is locked and no daemon answers, or the store is damaged
`

func printCommandUsage(w io.Writer, sp *spec, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: patchctl %s [flags] %s\n\n%s\n\nFlags:\n", sp.name, sp.args, sp.synopsis)
	printFlags(w, fs)
}

// printFlags lists flags the way the README writes them (--host, not -host); the one-letter
// -o keeps its single dash.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		line := "  " + dash + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}
