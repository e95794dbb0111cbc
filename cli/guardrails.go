package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/patchctl/patchctl/audit"
	"github.com/patchctl/patchctl/internal/jsonfmt"
	"github.com/patchctl/patchctl/lint"
	"github.com/patchctl/patchctl/nutconf"
	"github.com/patchctl/patchctl/probe"
	"github.com/patchctl/patchctl/routing"
)

type lintCmd struct {
	env    *Env
	target string
	files  []string
}

func newLintCmd(env *Env, fs *flag.FlagSet) Command {
	c := &lintCmd{env: env}
	fs.StringVar(&c.target, "target-version", "", "nutcracker `version` the files will run on (default: the newest patchctl knows)")
	return c
}

func (c *lintCmd) SetArgs(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("name at least one nutcracker.yml")
	}
	c.files = args
	return nil
}

func (c *lintCmd) Run(context.Context) error {
	var target = lint.Newest()
	if c.target != "" {
		v, err := lint.ParseVersion(c.target)
		if err != nil {
			return usagef("--target-version: %v", err)
		}
		target = v
	}
	r := lint.NewReport(target)
	var unreadable []string
	for _, f := range c.files {
		// One unreadable file must not hide the others' findings: it is a finding too.
		if err := r.AddFile(f); err != nil {
			unreadable = append(unreadable, err.Error())
		}
	}
	if err := r.Write(c.env.Out, c.env.Output); err != nil {
		return err
	}
	if errs, warns := r.Counts(); c.env.Output == "text" && errs+warns > 0 {
		fmt.Fprintf(c.env.Err, "%d error(s), %d warning(s) for nutcracker %s\n", errs, warns, target)
	}
	switch {
	case len(unreadable) > 0:
		// The worst outcome decides the exit code: a file that is not there is a bad argument.
		for _, msg := range unreadable {
			fmt.Fprintf(c.env.Err, "patchctl lint: %s\n", msg)
		}
		return errReportedUsage
	case r.HasErrors():
		return errFailed
	}
	return nil
}

// loadNutconf reads and parses a nutcracker.yml that must at least have a usable structure.
func loadNutconf(path string) (*nutconf.Config, error) {
	data, err := nutconf.ReadFile(path)
	if err != nil {
		return nil, usageErr(err)
	}
	cfg, err := nutconf.Parse(path, data)
	if err != nil {
		return nil, usagef("%v (run 'patchctl lint %s')", err, path)
	}
	return cfg, nil
}

type checkConnectCmd struct {
	env         *Env
	file        string
	timeout     time.Duration
	concurrency int
}

func newCheckConnectCmd(env *Env, fs *flag.FlagSet) Command {
	c := &checkConnectCmd{env: env}
	durationFlag(fs, &c.timeout, "timeout", 2*time.Second, time.Millisecond, 10*time.Minute, "per-server `timeout`")
	intFlag(fs, &c.concurrency, "concurrency", 16, 1, 1024, "check `N` servers at once")
	return c
}

func (c *checkConnectCmd) SetArgs(args []string) error { return oneArg(args, &c.file) }

func oneArg(args []string, dst *string) error {
	if len(args) != 1 {
		return fmt.Errorf("want exactly one file")
	}
	*dst = args[0]
	return nil
}

type connectRow struct {
	Pool     string          `json:"pool"`
	Server   string          `json:"server"`
	Protocol string          `json:"protocol"`
	OK       bool            `json:"ok"`
	Connect  jsonfmt.Seconds `json:"connect_seconds"` // TCP connect time
	Latency  jsonfmt.Seconds `json:"ping_seconds"`    // PING or version round trip
	Error    string          `json:"error,omitempty"`
}

func (c *checkConnectCmd) Run(ctx context.Context) error {
	cfg, err := loadNutconf(c.file)
	if err != nil {
		return err
	}
	var targets []probe.Target
	var rows []connectRow
	for _, p := range cfg.Pools {
		for _, s := range p.Servers {
			if s.Err != nil {
				continue
			}
			t := probe.ServerTarget(p, s, c.timeout)
			targets = append(targets, t)
			rows = append(rows, connectRow{Pool: p.Name, Server: s.Raw, Protocol: string(t.Protocol)})
		}
	}
	failed := 0
	for i, r := range probe.CheckAll(ctx, targets, max(1, c.concurrency)) {
		rows[i].OK = r.Err == nil
		if r.Err != nil {
			rows[i].Error = r.Err.Error()
			failed++
		} else {
			rows[i].Connect, rows[i].Latency = jsonfmt.Seconds(r.Connect), jsonfmt.Seconds(r.Latency)
		}
	}
	if err := c.env.emit(rows, func(w io.Writer) {
		row(w, "POOL", "SERVER", "PROTOCOL", "OK", "CONNECT", "PING", "ERROR")
		for _, r := range rows {
			row(w, r.Pool, r.Server, r.Protocol, r.OK, micros(r.Connect), micros(r.Latency), r.Error)
		}
	}); err != nil {
		return err
	}
	if failed > 0 {
		fmt.Fprintf(c.env.Err, "%d of %d servers failed the check\n", failed, len(rows))
		return errFailed
	}
	return nil
}

type routingVerifyCmd struct {
	env   *Env
	file  string
	pool  string
	proxy string
	keys  int
}

func newRoutingVerifyCmd(env *Env, fs *flag.FlagSet) Command {
	c := &routingVerifyCmd{env: env}
	fs.StringVar(&c.pool, "pool", "", "the `pool` to verify (required when the file has several)")
	fs.StringVar(&c.proxy, "proxy", "", "the live proxy's `address` (default: the pool's listen)")
	intFlag(fs, &c.keys, "keys", 200, 1, routing.MaxVerifyKeys, "write `N` probe keys")
	return c
}

func (c *routingVerifyCmd) SetArgs(args []string) error { return oneArg(args, &c.file) }

func (c *routingVerifyCmd) Run(ctx context.Context) error {
	cfg, err := loadNutconf(c.file)
	if err != nil {
		return err
	}
	p, err := pickPool(cfg, c.pool)
	if err != nil {
		return err
	}
	proxy := c.proxy
	if proxy == "" {
		t, ok := probe.ProxyTarget(p, 0)
		if !ok {
			return usagef("pool %s has no valid listen; pass --proxy", p.Name)
		}
		proxy = t.Addr
	}
	rep, err := routing.Verify(ctx, routing.FromConfig(p), proxy, routing.VerifyOptions{
		Keys: c.keys, Protocol: probe.PoolProtocol(p), Auth: p.RedisAuth(), DB: p.RedisDB()})
	if err != nil {
		return err
	}
	if err := c.env.emit(rep, func(w io.Writer) {
		fmt.Fprintf(w, "pool %s through %s: %d keys, %d mismatches\n\n", p.Name, proxy, rep.Keys, rep.Mismatches)
		row(w, "SERVER", "WEIGHT", "WEIGHT SHARE", "KEYS", "KEY SHARE")
		for _, s := range rep.Servers {
			row(w, s.Name, s.Weight, pct(s.WeightShare), s.Found, pct(s.Share))
		}
		for _, m := range rep.Examples {
			fmt.Fprintf(w, "mismatch: key %q predicted on %s, found on %v\n", m.Key, m.Predicted, m.Found)
		}
	}); err != nil {
		return err
	}
	if !rep.OK() {
		return errFailed
	}
	return nil
}

// micros shows a measured duration in a table; "-" when it was not measured.
func micros(d jsonfmt.Seconds) string {
	if d == 0 {
		return "-"
	}
	return d.D().Round(time.Microsecond).String()
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", f*100) }

func pickPool(cfg *nutconf.Config, name string) (*nutconf.Pool, error) {
	if name != "" {
		if p := cfg.Pool(name); p != nil {
			return p, nil
		}
		return nil, usagef("%s has no pool %q", cfg.File, name)
	}
	if len(cfg.Pools) != 1 {
		return nil, usagef("%s has %d pools: choose one with --pool", cfg.File, len(cfg.Pools))
	}
	return cfg.Pools[0], nil
}

type routingDiffCmd struct {
	env      *Env
	old, new string
	pool     string
	keys     int
}

func newRoutingDiffCmd(env *Env, fs *flag.FlagSet) Command {
	c := &routingDiffCmd{env: env}
	fs.StringVar(&c.pool, "pool", "", "compare only this `pool` (default: every pool present in both)")
	intFlag(fs, &c.keys, "keys", 100000, 1, routing.MaxDiffKeys, "sample `N` keys")
	return c
}

func (c *routingDiffCmd) SetArgs(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("want two files: OLD NEW")
	}
	c.old, c.new = args[0], args[1]
	return nil
}

type poolDiff struct {
	Pool string `json:"pool"`
	routing.DiffReport
}

func (c *routingDiffCmd) Run(context.Context) error {
	oldCfg, err := loadNutconf(c.old)
	if err != nil {
		return err
	}
	newCfg, err := loadNutconf(c.new)
	if err != nil {
		return err
	}
	var out []poolDiff
	for _, op := range oldCfg.Pools {
		if c.pool != "" && op.Name != c.pool {
			continue
		}
		np := newCfg.Pool(op.Name)
		if np == nil {
			continue
		}
		rep, err := routing.Diff(routing.FromConfig(op), routing.FromConfig(np), c.keys)
		if err != nil {
			return usageErr(err)
		}
		out = append(out, poolDiff{Pool: op.Name, DiffReport: rep})
	}
	if len(out) == 0 {
		return usagef("no pool is present in both files")
	}
	return c.env.emit(out, func(w io.Writer) {
		row(w, "POOL", "KEYS MOVED", "SAMPLE")
		for _, d := range out {
			moved := pct(d.MovedFraction)
			if d.Random {
				// The same figure as the JSON: with random placement a key is read from
				// another backend than it was written to with this probability.
				moved += " (expected: random distribution)"
			}
			row(w, d.Pool, moved, d.Sample)
		}
	})
}

type auditCmd struct {
	env     *Env
	configs stringList
	proc    string
}

type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func newAuditCmd(env *Env, fs *flag.FlagSet) Command {
	c := &auditCmd{env: env}
	fs.Var(&c.configs, "c", "also check this nutcracker.yml `file` (repeatable)")
	fs.StringVar(&c.proc, "proc", "/proc", "the proc filesystem to read")
	return c
}

func (c *auditCmd) Run(ctx context.Context) error {
	r, err := audit.Run(ctx, audit.Options{ProcRoot: c.proc, Configs: c.configs, SelfUID: os.Geteuid()})
	if err != nil {
		return err
	}
	if err := c.env.emit(r, func(w io.Writer) {
		row(w, "PID", "USER", "CONFIG", "STATS", "LISTENING")
		for _, p := range r.Processes {
			row(w, p.PID, p.User, p.ConfigPath, p.StatsAddr, fmt.Sprint(p.Listening))
		}
		fmt.Fprintln(w)
		row(w, "SEVERITY", "RULE", "SUBJECT", "MESSAGE")
		for _, f := range r.Findings {
			row(w, f.Severity, f.Rule, f.Subject, f.Message)
		}
	}); err != nil {
		return err
	}
	if r.HasErrors() {
		return errFailed
	}
	return nil
}
