// Package inventory knows the fleet: the hosts running twemproxy (from the inventory file),
// the version each really runs (discovered from its stats port or `nutcracker -V`), which
// advisories and newer releases concern it, and what changed between two observations.
package inventory

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/patchctl/patchctl/internal/strictyaml"
	"github.com/patchctl/patchctl/transport"

	"github.com/patchctl/patchctl/internal/readfile"
)

// DefaultBinary is the nutcracker binary run when a host names none (looked up in PATH).
const DefaultBinary = "nutcracker"

// Host is one twemproxy instance of the fleet.
type Host struct {
	Name        string            `yaml:"name" json:"name"`
	Environment string            `yaml:"environment" json:"environment"`
	Labels      map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	Stats       string            `yaml:"stats" json:"stats"`   // host:port of the stats port
	Config      string            `yaml:"config" json:"config"` // path of nutcracker.yml on the host
	Binary      string            `yaml:"binary,omitempty" json:"binary,omitempty"`
	Transport   *transport.Spec   `yaml:"transport,omitempty" json:"transport,omitempty"`
	Deploy      *Deploy           `yaml:"deploy,omitempty" json:"deploy,omitempty"`
}

// Deploy says how patchctl installs and restarts nutcracker on a host (patchctl deploy,
// rollback). Hosts without it can be inventoried but not deployed to.
type Deploy struct {
	Root      string   `yaml:"root" json:"root"`                                 // slots and the current symlink
	Restart   string   `yaml:"restart" json:"restart"`                           // pidfile, systemd or command
	Unit      string   `yaml:"unit,omitempty" json:"unit,omitempty"`             // systemd
	Start     []string `yaml:"start,omitempty" json:"start,omitempty"`           // command: argv
	Stop      []string `yaml:"stop,omitempty" json:"stop,omitempty"`             // command: argv
	User      string   `yaml:"user,omitempty" json:"user,omitempty"`             // pidfile: runs nutcracker
	PidFile   string   `yaml:"pid_file,omitempty" json:"pid_file,omitempty"`     // pidfile
	LogFile   string   `yaml:"log_file,omitempty" json:"log_file,omitempty"`     // pidfile
	ProbeHost string   `yaml:"probe_host,omitempty" json:"probe_host,omitempty"` // smoke tests reach pools here
	// Keep is how many builds stay installed (0 = the default, 5).
	Keep int `yaml:"keep,omitempty" json:"keep,omitempty"`
	// SmokeTimeout bounds each smoke test (0 = the default, 10s).
	SmokeTimeout time.Duration `yaml:"smoke_timeout,omitempty" json:"smoke_timeout,omitempty"`
	// StatsInterval is nutcracker's -i and StopTimeout how long SIGINT gets before SIGKILL
	// (pidfile; 0 = the defaults, 1s and 5s).
	StatsInterval time.Duration `yaml:"stats_interval,omitempty" json:"stats_interval,omitempty"`
	StopTimeout   time.Duration `yaml:"stop_timeout,omitempty" json:"stop_timeout,omitempty"`
}

// Bounds of the deploy settings.
const (
	maxKeep          = 100
	maxSmokeTimeout  = 10 * time.Minute
	minStatsInterval = 10 * time.Millisecond
	maxStatsInterval = time.Hour
	maxStopTimeout   = 10 * time.Minute
)

func (d *Deploy) problems() []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, "deploy: "+fmt.Sprintf(format, args...)) }
	if d.Root == "" {
		add("root: missing (directory for the installed builds)")
	} else if !path.IsAbs(d.Root) {
		add("root: %q is not an absolute path", d.Root)
	}
	if d.Keep < 0 || d.Keep > maxKeep {
		add("keep: %d is not 0 (the default) to %d", d.Keep, maxKeep)
	}
	if d.SmokeTimeout < 0 || d.SmokeTimeout > maxSmokeTimeout {
		add("smoke_timeout: %s is not 0 (the default) to %s", d.SmokeTimeout, maxSmokeTimeout)
	}
	if d.StatsInterval != 0 && (d.StatsInterval < minStatsInterval || d.StatsInterval > maxStatsInterval) {
		add("stats_interval: %s is not %s to %s", d.StatsInterval, minStatsInterval, maxStatsInterval)
	}
	if d.StopTimeout < 0 || d.StopTimeout > maxStopTimeout {
		add("stop_timeout: %s is not 0 (the default) to %s", d.StopTimeout, maxStopTimeout)
	}
	if d.Restart != "pidfile" {
		// Elsewhere the unit or the start command decides nutcracker's flags and its stop.
		if d.StatsInterval != 0 {
			add("stats_interval: only for restart pidfile (set -i in the unit or start command)")
		}
		if d.StopTimeout != 0 {
			add("stop_timeout: only for restart pidfile")
		}
	}
	switch d.Restart {
	case "pidfile":
		if d.User == "root" {
			add("user: nutcracker must not run as root")
		}
		// nutcracker runs in /, the restart shell wherever the login lands.
		for _, f := range [...]struct{ key, path string }{{"pid_file", d.PidFile}, {"log_file", d.LogFile}} {
			if f.path != "" && !path.IsAbs(f.path) {
				add("%s: %q is not an absolute path", f.key, f.path)
			}
		}
	case "systemd":
		if d.Unit == "" {
			add("unit: missing for restart systemd")
		}
	case "command":
		if len(d.Start) == 0 || len(d.Stop) == 0 {
			add("start and stop: both required for restart command")
		}
	case "":
		add("restart: missing (pidfile, systemd or command)")
	default:
		add("restart: %q is not pidfile, systemd or command", d.Restart)
	}
	return out
}

// Inventory is a validated inventory file.
type Inventory struct {
	Hosts []Host
}

// Host returns the host called name.
func (inv *Inventory) Host(name string) (Host, bool) {
	for _, h := range inv.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return Host{}, false
}

type inventoryFile struct {
	Defaults defaults `yaml:"defaults"`
	Hosts    []Host   `yaml:"hosts"`
}

// defaults apply to every host that leaves the key out; labels are merged.
type defaults struct {
	Environment string            `yaml:"environment"`
	Labels      map[string]string `yaml:"labels"`
	Config      string            `yaml:"config"`
	Binary      string            `yaml:"binary"`
	Transport   *transport.Spec   `yaml:"transport"`
	Deploy      *Deploy           `yaml:"deploy"`
}

// MaxFileSize caps the inventory file: 10,000 hosts take about 3 MiB.
const MaxFileSize = 16 << 20

// Load reads and validates the inventory file at path.
func Load(path string) (*Inventory, error) {
	data, err := readfile.Read(path, MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	return Parse(data, path)
}

var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`) })

// Parse decodes and validates an inventory. Unknown keys and wrong types are errors, and
// every invalid host is reported with its line; file names the source in messages.
func Parse(data []byte, file string) (*Inventory, error) {
	var f inventoryFile
	doc, err := strictyaml.Parse(data, file, &f)
	if err != nil {
		return nil, err
	}
	lines := doc.ItemLines("hosts")
	errs := &strictyaml.Error{File: file}
	fail := func(line int, format string, args ...any) {
		errs.Problems = append(errs.Problems, strictyaml.Problem{Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	if len(f.Hosts) == 0 {
		fail(0, "no hosts")
	}
	inv := &Inventory{}
	seen := map[string]int{}
	for i, h := range f.Hosts {
		line := strictyaml.LineAt(lines, i)
		h = f.Defaults.apply(h)
		if h.Transport != nil {
			t := *h.Transport
			if err := expandHome(&t.IdentityFile, &t.KnownHosts); err != nil {
				fail(line, "host %s: transport: %v", h.Name, err)
			}
			h.Transport = &t
		}
		who := "host " + strconv.Itoa(i+1)
		if h.Name != "" {
			who = "host " + h.Name
		}
		for _, msg := range h.problems() {
			fail(line, "%s: %s", who, msg)
		}
		if first, dup := seen[h.Name]; dup && h.Name != "" {
			fail(line, "%s: duplicate name (first on line %d)", who, first)
		} else {
			seen[h.Name] = line
		}
		inv.Hosts = append(inv.Hosts, h)
	}
	if len(errs.Problems) > 0 {
		return nil, errs
	}
	return inv, nil
}

func (d defaults) apply(h Host) Host {
	if h.Environment == "" {
		h.Environment = d.Environment
	}
	if h.Config == "" {
		h.Config = d.Config
	}
	if h.Binary == "" {
		h.Binary = d.Binary
	}
	if h.Binary == "" {
		h.Binary = DefaultBinary
	}
	if h.Transport == nil && d.Transport != nil {
		t := *d.Transport
		h.Transport = &t
	}
	if h.Deploy == nil && d.Deploy != nil {
		dep := *d.Deploy
		h.Deploy = &dep
	}
	if len(d.Labels) > 0 {
		labels := maps.Clone(d.Labels)
		maps.Copy(labels, h.Labels)
		h.Labels = labels
	}
	return h
}

// problems lists what is wrong with h, one message per field.
func (h Host) problems() []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	switch {
	case h.Name == "":
		add("name: missing")
	case !nameRE().MatchString(h.Name):
		add("name: %q may only hold letters, digits, '.', '_' and '-'", h.Name)
	}
	if h.Environment == "" {
		add("environment: missing")
	}
	for k := range h.Labels {
		if k == "" {
			add("labels: empty key")
		}
	}
	if h.Stats == "" {
		add("stats: missing (host:port of the stats port)")
	} else if err := checkAddr(h.Stats, true); err != nil {
		add("stats: %v", err)
	}
	if h.Config == "" {
		add("config: missing (path of nutcracker.yml)")
	} else if !path.IsAbs(h.Config) {
		add("config: %q is not an absolute path", h.Config)
	}
	if h.Binary != DefaultBinary && !path.IsAbs(h.Binary) {
		add("binary: %q is neither %q nor an absolute path", h.Binary, DefaultBinary)
	}
	switch t := h.Transport; {
	case t == nil:
		add("transport: missing (type local or ssh)")
	case t.Kind == "local":
		if t.Address != "" {
			add("transport: address is only for type ssh")
		}
	case t.Kind == "ssh":
		if t.Address == "" {
			add("transport: address missing for type ssh")
		} else if err := checkAddr(t.Address, false); err != nil {
			add("transport: address: %v", err)
		}
	case t.Kind == "":
		add("transport: type missing (local or ssh)")
	default:
		add("transport: type %q is not local or ssh", t.Kind)
	}
	if t := h.Transport; t != nil && t.Timeout < 0 {
		add("transport: negative timeout")
	} else if t != nil && t.Timeout > transport.MaxTimeout {
		add("transport: timeout %v is more than the maximum %v", t.Timeout, transport.MaxTimeout)
	}
	if h.Deploy != nil {
		out = append(out, h.Deploy.problems()...)
	}
	return out
}

// checkAddr validates host:port (the port optional unless needPort).
func checkAddr(addr string, needPort bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if needPort {
			return fmt.Errorf("%q is not host:port", addr)
		}
		host, port = addr, ""
	}
	if host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	if !validHost(host) {
		return fmt.Errorf("%q: invalid host %q", addr, host)
	}
	if port != "" || needPort {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port %q is not 1-65535", addr, port)
		}
	}
	return nil
}

// hostnameRE is compiled on first use: its {0,62} repetitions make a large program that
// every start-up of patchctl (lint, --help) would otherwise pay for.
var hostnameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62})?)*\.?$`)
})

func validHost(h string) bool {
	return net.ParseIP(h) != nil || (len(h) <= 253 && hostnameRE().MatchString(h))
}

// expandHome replaces a leading "~/" in local paths with the home directory of the user
// running patchctl, as a shell would.
func expandHome(paths ...*string) error {
	for _, p := range paths {
		if *p != "~" && !strings.HasPrefix(*p, "~/") {
			continue
		}
		home, err := os.UserHomeDir()
		if err != nil {
			return fmt.Errorf("%s: %w", *p, err)
		}
		*p = home + strings.TrimPrefix(*p, "~")
	}
	return nil
}
