// Package rollout installs nutcracker builds side by side on a host, switches between them
// atomically, restarts the proxy, proves it works with smoke tests and rolls back by itself
// when it does not. Every step is recorded in the store before it runs, so an interrupted
// deploy is finished or undone the next time the host is touched.
package rollout

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/transport"
)

var (
	// ErrNothingToRollBack means the host has no good build other than the active one.
	ErrNothingToRollBack = errors.New("nothing to roll back to")
	// ErrPreflight means the new build was refused before anything on the host changed.
	ErrPreflight = errors.New("pre-flight failed")
	// ErrWrongVersion means a binary reports a version other than the one asked for.
	ErrWrongVersion = errors.New("binary reports the wrong version")
	// ErrSmoke means the proxy failed its smoke test after a switch.
	ErrSmoke = errors.New("smoke test failed")
	// ErrRolledBack is returned by Deploy when the new build failed and the previous one
	// runs again.
	ErrRolledBack = errors.New("deploy rolled back")
	// ErrRunAsRoot means the configured run-as user is root, which patchctl refuses.
	ErrRunAsRoot = errors.New("refusing to run nutcracker as root")
	// ErrBusy means another operation on the host is running in this process.
	ErrBusy = errors.New("another operation is running on this host")
	// ErrUnknownSlot means a slot named by the caller is not installed on the host.
	ErrUnknownSlot = errors.New("unknown slot")
	// ErrDigestMismatch means a slot's binary is not the file recorded at install.
	ErrDigestMismatch = errors.New("binary differs from the one installed")
	// ErrTransportUser means the transport logs in as a user that cannot restart
	// nutcracker the configured way.
	ErrTransportUser = errors.New("transport user cannot restart nutcracker")
	// ErrNotRunning means adopt found no nutcracker serving the host's stats port.
	ErrNotRunning = errors.New("no nutcracker running")
)

// Defaults of the per-host settings.
const (
	DefaultKeep          = 5
	DefaultSmokeTimeout  = 10 * time.Second
	DefaultStatsInterval = time.Second
	DefaultStopTimeout   = 5 * time.Second
)

// Restart modes.
const (
	ModePidfile = "pidfile" // patchctl starts nutcracker in the background, records its pid in a file and stops it by signal
	ModeSystemd = "systemd" // systemctl restart UNIT
	ModeCommand = "command" // operator-given start and stop commands
)

// Process says how nutcracker is started and stopped on a host.
type Process struct {
	Mode string // pidfile, systemd or command
	// Unit is the systemd unit (systemd mode).
	Unit string
	// Start and Stop are argv run on the host (command mode). Stop must succeed when
	// nothing runs.
	Start, Stop []string
	// User runs nutcracker (pidfile mode); default "nutcracker". Root is refused.
	User string
	// PidFile, LogFile default to <root>/run/nutcracker.pid and <root>/log/nutcracker.log.
	PidFile, LogFile string
	// StatsInterval is nutcracker's -i (pidfile mode, default 1s): how often its stats
	// snapshot refreshes. Smoke tests never wait for a refresh.
	StatsInterval time.Duration
	// StopTimeout is how long a SIGINT gets before SIGKILL, and how long a port held by
	// another process is waited for (pidfile mode, default 5s).
	StopTimeout time.Duration
}

// HostSpec is one host as the rollout sees it.
type HostSpec struct {
	Name      string
	Transport transport.Transport
	Root      string // directory holding slots/ and the current symlink
	Config    string // path of nutcracker.yml on the host
	// StatsAddr is the stats port as patchctl reaches it (host:port). In pidfile mode its
	// port is nutcracker's -s and its host -a, unless StatsBind is set.
	StatsAddr string
	StatsBind string
	// ProbeHost replaces the host of pool listen addresses for smoke tests, for proxies
	// that listen on addresses patchctl cannot reach as written. Wildcard listen addresses
	// are reached at the host of StatsAddr.
	ProbeHost string
	Process   Process
	// Keep is how many slots stay on the host (default 5); SmokeTimeout bounds each smoke
	// test (default 10s). DeployOptions override both.
	Keep         int
	SmokeTimeout time.Duration
}

func (h HostSpec) validate() error {
	var missing []string
	for _, f := range []struct{ name, v string }{{"name", h.Name}, {"root", h.Root}, {"config", h.Config}, {"stats_addr", h.StatsAddr}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if h.Transport == nil {
		missing = append(missing, "transport")
	}
	if len(missing) > 0 {
		return fmt.Errorf("host %q: missing %s", h.Name, strings.Join(missing, ", "))
	}
	if !strings.HasPrefix(h.Root, "/") {
		return fmt.Errorf("host %s: root %q: not an absolute path", h.Name, h.Root)
	}
	return nil
}

// Linter checks a nutcracker.yml for the version about to run it; a non-nil error refuses
// the deploy at pre-flight.
type Linter interface {
	Lint(filename string, data []byte, version string) error
}

// Options configure a Rollout.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Linter runs at pre-flight, before nutcracker -t (default Lint{}).
	Linter Linter
	// OnStep is called after each step of an operation is recorded and before it runs,
	// for progress output.
	OnStep func(Operation)
}

// Rollout deploys and rolls back nutcracker builds. It is safe for concurrent use; one
// operation per host runs at a time.
type Rollout struct {
	st   *store.Store
	opts Options
	log  *slog.Logger

	mu   sync.Mutex
	busy map[string]bool
}

// New returns a Rollout recording into st.
func New(st *store.Store, opts Options) *Rollout {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Linter == nil {
		opts.Linter = Lint{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Rollout{st: st, opts: opts, log: log, busy: map[string]bool{}}
}

// lock marks a host busy for the length of one operation.
func (r *Rollout) lock(host string) (unlock func(), err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy[host] {
		return nil, fmt.Errorf("host %s: %w", host, ErrBusy)
	}
	r.busy[host] = true
	return func() {
		r.mu.Lock()
		delete(r.busy, host)
		r.mu.Unlock()
	}, nil
}
