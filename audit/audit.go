package audit

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/patchctl/patchctl/nutconf"
)

// Severity of a finding.
const (
	Error   = "error"
	Warning = "warning"
)

// Finding is one problem found on the host.
type Finding struct {
	Severity string `json:"severity"`
	Rule     string `json:"rule"`
	Subject  string `json:"subject"` // "pid 1234" or a file
	Message  string `json:"message"`
}

// Report is what Run found.
type Report struct {
	Processes []Process `json:"processes"`
	Findings  []Finding `json:"findings"`
}

// HasErrors reports whether any finding is an error.
func (r Report) HasErrors() bool {
	for _, f := range r.Findings {
		if f.Severity == Error {
			return true
		}
	}
	return false
}

// Options say where to look.
type Options struct {
	ProcRoot      string   // default /proc
	DefaultConfig string   // nutcracker's -c default; default /etc/nutcracker/nutcracker.yml
	Configs       []string // extra configuration files to check even when no process uses them
	SelfUID       int      // patchctl's own effective uid, -1 to skip the check
}

// Run audits the local host.
func Run(ctx context.Context, opts Options) (Report, error) {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.DefaultConfig == "" {
		opts.DefaultConfig = "/etc/nutcracker/nutcracker.yml"
	}
	var r Report
	add := func(sev, rule, subject, format string, args ...any) {
		r.Findings = append(r.Findings, Finding{Severity: sev, Rule: rule, Subject: subject, Message: fmt.Sprintf(format, args...)})
	}
	if opts.SelfUID == 0 {
		add(Warning, "patchctl-root", "patchctl", "patchctl runs as root; it needs no privileges beyond its store and the hosts' transports")
	}
	procs, err := FindProcesses(opts.ProcRoot, opts.DefaultConfig)
	if err != nil {
		return r, err
	}
	r.Processes = procs
	configs := map[string]int{} // path -> uid of a process using it (-1 = none)
	for _, c := range opts.Configs {
		configs[c] = -1
	}
	for _, p := range procs {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		subject := "pid " + strconv.Itoa(p.PID)
		if p.UID == 0 {
			add(Error, "process-root", subject, "nutcracker runs as root; run it as a dedicated unprivileged user (see configs/nutcracker.service)")
		}
		if len(p.Unreadable) > 0 {
			add(Warning, "proc-unreadable", subject, "cannot read %s of the process (it runs as %s); its listening sockets and working directory may be incomplete: run audit as root or as %s",
				strings.Join(p.Unreadable, ", "), p.User, p.User)
		}
		if statsPublic(p) {
			add(Error, "stats-public", subject, "the stats port %s is unauthenticated and listens on all interfaces; pass -a 127.0.0.1", p.StatsAddr)
		}
		if !filepath.IsAbs(p.ConfigPath) {
			add(Warning, "config-unresolved", subject, "configuration %q is relative to the process's working directory, which cannot be read", p.ConfigPath)
			continue
		}
		configs[p.ConfigPath] = p.UID
	}
	paths := make([]string, 0, len(configs))
	for path := range configs {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		checkConfig(path, configs[path], add)
	}
	return r, nil
}

// statsPublic reports whether the process's stats listener is bound to all interfaces.
func statsPublic(p Process) bool {
	host, port, err := net.SplitHostPort(p.StatsAddr)
	if err != nil {
		return false
	}
	for _, l := range p.Listening {
		lh, lp, _ := net.SplitHostPort(l)
		if lp == port {
			return unspecified(lh)
		}
	}
	return unspecified(host)
}

func unspecified(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}

// public reports whether a listen host is reachable from other machines.
func public(host string) bool {
	ip := net.ParseIP(host)
	if ip == nil {
		return host != "localhost" // a name: assume it resolves to a routable address
	}
	return !ip.IsLoopback()
}

func checkConfig(path string, procUID int, add func(sev, rule, subject, format string, args ...any)) {
	fi, err := os.Stat(path)
	if err != nil {
		add(Warning, "config-unreadable", path, "cannot inspect the configuration: %v", err)
		return
	}
	mode := fi.Mode().Perm()
	owner := -1
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		owner = int(st.Uid)
	}
	switch {
	case mode&0o002 != 0:
		add(Error, "config-writable", path, "mode %04o: anyone can change the proxy's configuration", mode)
	case mode&0o020 != 0:
		add(Warning, "config-writable", path, "mode %04o: its group can change the proxy's configuration", mode)
	}
	if procUID > 0 && owner == procUID && mode&0o200 != 0 {
		add(Warning, "config-owned-by-proxy", path, "owned and writable by the user nutcracker runs as (%s); a compromised proxy could rewrite it; make it root-owned, mode 0640", userName(owner))
	}
	data, err := nutconf.ReadFile(path)
	if err != nil {
		add(Warning, "config-unreadable", path, "cannot read the configuration: %v", err)
		return
	}
	cfg, err := nutconf.Parse(path, data)
	if cfg == nil {
		add(Warning, "config-invalid", path, "cannot parse the configuration: %v", err)
		return
	}
	for _, pool := range cfg.Pools {
		l, ok := pool.Listen()
		if !ok || l.Unix {
			continue
		}
		auth := pool.RedisAuth() != ""
		if auth && mode&0o004 != 0 {
			add(Warning, "secret-readable", path, "pool %s has a redis_auth password but the file is world-readable (mode %04o)", pool.Name, mode)
		}
		if !public(l.Host) {
			continue
		}
		switch {
		case pool.Redis() && !auth:
			add(Error, "listen-public-noauth", path, "pool %s listens on %s without redis_auth: anyone who reaches it reads and writes every key", pool.Name, l.Address())
		case !pool.Redis():
			add(Warning, "listen-public-memcache", path, "pool %s listens on %s; the memcache protocol has no authentication, restrict it with a firewall", pool.Name, l.Address())
		}
	}
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}
