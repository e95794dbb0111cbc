package rollout

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/patchctl/patchctl/transport"
)

// controller restarts nutcracker on a host so that the binary behind <root>/current runs.
type controller interface {
	// restart stops whatever runs and starts current. It returns once the start was issued;
	// readiness is the smoke test's business.
	restart(ctx context.Context, ports []int) error
}

func newController(h HostSpec) (controller, error) {
	p := h.Process
	switch p.Mode {
	case ModePidfile, "":
		return newPidfile(h)
	case ModeSystemd:
		if p.Unit == "" {
			return nil, fmt.Errorf("host %s: process.unit: required in systemd mode", h.Name)
		}
		return systemd{h: h}, nil
	case ModeCommand:
		if len(p.Start) == 0 || len(p.Stop) == 0 {
			return nil, fmt.Errorf("host %s: process.start and process.stop: required in command mode", h.Name)
		}
		return command{h: h}, nil
	}
	return nil, fmt.Errorf("host %s: process.mode %q: want pidfile, systemd or command", h.Name, p.Mode)
}

type systemd struct{ h HostSpec }

func (s systemd) restart(ctx context.Context, _ []int) error {
	if _, err := s.h.Transport.Run(ctx, []string{"systemctl", "restart", "--", s.h.Process.Unit}, nil); err != nil {
		return fmt.Errorf("host %s: %w", s.h.Name, err)
	}
	if _, err := s.h.Transport.Run(ctx, []string{"systemctl", "is-active", "--quiet", "--", s.h.Process.Unit}, nil); err != nil {
		return fmt.Errorf("host %s: unit %s not active after restart: %w", s.h.Name, s.h.Process.Unit, err)
	}
	return nil
}

type command struct{ h HostSpec }

func (c command) restart(ctx context.Context, _ []int) error {
	for _, argv := range [][]string{c.h.Process.Stop, c.h.Process.Start} {
		if _, err := c.h.Transport.Run(ctx, argv, nil); err != nil {
			return fmt.Errorf("host %s: %w", c.h.Name, err)
		}
	}
	return nil
}

// pidfile runs nutcracker as a daemon with a pid file and replaces it by signal.
type pidfile struct {
	h                   HostSpec
	user                string
	pidFile, logFile    string
	statsPort           int
	statsBind           string
	interval, stopAfter time.Duration
}

func newPidfile(h HostSpec) (*pidfile, error) {
	p := h.Process
	c := &pidfile{h: h, user: p.User, pidFile: p.PidFile, logFile: p.LogFile,
		interval: p.StatsInterval, stopAfter: p.StopTimeout}
	if c.user == "" {
		c.user = "nutcracker"
	}
	if c.user == "root" || c.user == "0" {
		return nil, fmt.Errorf("host %s: process.user %q: %w", h.Name, c.user, ErrRunAsRoot)
	}
	if c.pidFile == "" {
		c.pidFile = path.Join(h.Root, "run", "nutcracker.pid")
	}
	if c.logFile == "" {
		c.logFile = path.Join(h.Root, "log", "nutcracker.log")
	}
	if c.interval <= 0 {
		c.interval = time.Second
	}
	if c.stopAfter <= 0 {
		c.stopAfter = 5 * time.Second
	}
	host, port, err := net.SplitHostPort(h.StatsAddr)
	if err != nil {
		return nil, fmt.Errorf("host %s: stats_addr %q: %w", h.Name, h.StatsAddr, err)
	}
	if c.statsPort, err = strconv.Atoi(port); err != nil || c.statsPort <= 0 || c.statsPort > 65535 {
		return nil, fmt.Errorf("host %s: stats_addr %q: bad port", h.Name, h.StatsAddr)
	}
	c.statsBind = host
	if h.StatsBind != "" {
		c.statsBind = h.StatsBind
	}
	return c, nil
}

// ids resolves the run-as user on the host and checks patchctl may start it.
func (c *pidfile) ids(ctx context.Context) (uid, gid string, asRoot bool, err error) {
	run := func(argv ...string) (string, error) {
		res, err := c.h.Transport.Run(ctx, argv, nil)
		if err != nil {
			return "", fmt.Errorf("host %s: %w", c.h.Name, err)
		}
		return strings.TrimSpace(string(res.Stdout)), nil
	}
	self, err := run("id", "-u")
	if err != nil {
		return "", "", false, err
	}
	if uid, err = run("id", "-u", "--", c.user); err != nil {
		return "", "", false, fmt.Errorf("process.user %q: %w", c.user, err)
	}
	if uid == "0" {
		return "", "", false, fmt.Errorf("host %s: process.user %q has uid 0: %w", c.h.Name, c.user, ErrRunAsRoot)
	}
	if gid, err = run("id", "-g", "--", c.user); err != nil {
		return "", "", false, fmt.Errorf("process.user %q: %w", c.user, err)
	}
	if self != "0" && self != uid {
		return "", "", false, fmt.Errorf("host %s: connected as uid %s, which cannot start nutcracker as %s (uid %s)", c.h.Name, self, c.user, uid)
	}
	return uid, gid, self == "0", nil
}

// restartScript stops the nutcracker named by the pid file, waits until it is gone and
// the ports are free, then execs the start command, all in one shell on the host so that
// the window without a listener is as short as the host allows.
//
// $1 current path, $2 pid file, $3 stop timeout in 5 ms ticks, $4 listen ports as
// upper-case hex alternatives (1F90|1F91), then the start argv.
// Exit 3: the old process survived SIGKILL; 4: a port stayed in use.
const restartScript = `set -u
exe=$1 pidf=$2 ticks=$3 ports=$4 stopped=
shift 4
alive() {
	[ -r /proc/$1/stat ] || return 1
	read -r st < /proc/$1/stat || return 1
	case $st in *") Z "*) return 1 ;; esac
}
if [ -s "$pidf" ]; then
	pid=
	read -r pid < "$pidf" || : # nutcracker writes no newline, so read reports EOF
	case $pid in ''|*[!0-9]*) pid= ;; esac
	# A pid file outlives its process (SIGINT and SIGKILL leave it); only a process
	# started as our current binary is ours to stop.
	if [ -n "$pid" ] && alive "$pid" && [ "$(tr '\0' '\n' < /proc/$pid/cmdline 2>/dev/null | head -n 1)" = "$exe" ]; then
		kill -INT "$pid" 2>/dev/null
		n=0
		while alive "$pid"; do
			n=$((n + 1))
			if [ $n -gt 2000 ]; then sleep 0.005; fi
			if [ $n -eq $((2000 + ticks)) ]; then kill -KILL "$pid" 2>/dev/null; fi
			if [ $n -gt $((2400 + ticks)) ]; then echo "pid $pid did not exit" >&2; exit 3; fi
		done
		stopped=1
	fi
	rm -f -- "$pidf"
fi
# A process's sockets are closed before it turns zombie, so after our own stop the ports
# are free; otherwise (no or a stale pid file) something else may hold them, and reading
# /proc/net/tcp costs milliseconds on a busy host, so only then.
if [ -z "$stopped" ]; then
	busy() {
		for f in /proc/net/tcp /proc/net/tcp6; do
			[ -r $f ] && grep -qE ":($ports) [0-9A-F]+:0000 0A " $f && return 0
		done
		return 1
	}
	n=0
	while busy; do
		n=$((n + 1))
		if [ $n -gt $ticks ]; then echo "a port of $ports is still in use" >&2; exit 4; fi
		sleep 0.005
	done
fi
exec "$@"
`

func (c *pidfile) restart(ctx context.Context, ports []int) error {
	uid, gid, asRoot, err := c.ids(ctx)
	if err != nil {
		return err
	}
	for _, dir := range []string{path.Dir(c.pidFile), path.Dir(c.logFile)} {
		argv := []string{"install", "-d", "-m", "0755"}
		if asRoot {
			argv = append(argv, "-o", uid, "-g", gid)
		}
		if _, err := c.h.Transport.Run(ctx, append(argv, "--", dir), nil); err != nil {
			return fmt.Errorf("host %s: %w", c.h.Name, err)
		}
	}
	hex := []string{fmt.Sprintf("%04X", c.statsPort)}
	for _, p := range ports {
		hex = append(hex, fmt.Sprintf("%04X", p))
	}
	current := hostFS{c.h}.current()
	var start []string
	if asRoot {
		start = []string{"setpriv", "--reuid=" + uid, "--regid=" + gid, "--init-groups", "--"}
	}
	start = append(start, current, "-d", "-p", c.pidFile, "-c", c.h.Config,
		"-s", strconv.Itoa(c.statsPort), "-a", c.statsBind, "-o", c.logFile,
		"-i", strconv.FormatInt(c.interval.Milliseconds(), 10))
	ticks := int(c.stopAfter / (5 * time.Millisecond))
	argv := append([]string{"sh", "-c", restartScript, "restart", current, c.pidFile,
		strconv.Itoa(ticks), strings.Join(hex, "|")}, start...)
	if _, err := c.h.Transport.Run(ctx, argv, nil); err != nil {
		var exit *transport.ExitError
		if errors.As(err, &exit) && (exit.Status == 3 || exit.Status == 4) {
			return fmt.Errorf("host %s: stop nutcracker: %w", c.h.Name, err)
		}
		return fmt.Errorf("host %s: start nutcracker: %w", c.h.Name, err)
	}
	return nil
}
