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
	// check proves, before anything on the host changes, that patchctl can restart
	// nutcracker there the configured way (user, unit).
	check(ctx context.Context) error
	// restart stops whatever runs and starts current. It returns once the start was issued
	// (readiness is the smoke test's business) and what it had to wait for, if anything.
	restart(ctx context.Context, rs restartSpec) (waited string, err error)
	// down returns a non-nil error quoting why when the proxy is known not to run (it
	// exited at start); nil when it runs or when the mode cannot tell.
	down(ctx context.Context) error
}

// restartSpec is what one restart needs besides the host's settings.
type restartSpec struct {
	Ports   []int    // the pools' listen ports, which must be free before the start
	Adopted *Adopted // a proxy started outside patchctl, to stop as well
}

var (
	_ controller = (*pidfile)(nil)
	_ controller = systemd{}
	_ controller = command{}
)

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

func hostRun(ctx context.Context, h HostSpec, argv ...string) (transport.Result, error) {
	res, err := h.Transport.Run(ctx, argv, nil)
	if err != nil {
		return res, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return res, nil
}

type systemd struct{ h HostSpec }

// check: the unit must exist; restarting it needs root (or a polkit rule), which only the
// restart itself can prove.
func (s systemd) check(ctx context.Context) error {
	res, err := hostRun(ctx, s.h, "systemctl", "show", "-p", "LoadState", "--value", "--", s.h.Process.Unit)
	if err != nil {
		return err
	}
	if st := strings.TrimSpace(string(res.Stdout)); st != "loaded" {
		return fmt.Errorf("host %s: unit %s: load state %q", s.h.Name, s.h.Process.Unit, st)
	}
	return nil
}

func (s systemd) restart(ctx context.Context, _ restartSpec) (string, error) {
	if _, err := hostRun(ctx, s.h, "systemctl", "restart", "--", s.h.Process.Unit); err != nil {
		return "", err
	}
	return "", s.down(ctx)
}

func (s systemd) down(ctx context.Context) error {
	if _, err := hostRun(ctx, s.h, "systemctl", "is-active", "--quiet", "--", s.h.Process.Unit); err == nil {
		return nil
	}
	res, _ := hostRun(ctx, s.h, "journalctl", "-u", s.h.Process.Unit, "-n", "5", "--no-pager", "-o", "cat")
	return fmt.Errorf("host %s: unit %s is not active: %s", s.h.Name, s.h.Process.Unit, oneLine(string(res.Stdout)))
}

type command struct{ h HostSpec }

func (c command) check(context.Context) error { return nil }

func (c command) restart(ctx context.Context, _ restartSpec) (string, error) {
	for _, argv := range [][]string{c.h.Process.Stop, c.h.Process.Start} {
		if _, err := hostRun(ctx, c.h, argv...); err != nil {
			return "", err
		}
	}
	return "", nil
}

func (c command) down(context.Context) error { return nil }

// pidfile runs nutcracker in the background with a pid file and replaces it by signal.
type pidfile struct {
	h                   HostSpec
	user                string
	pidFile, logFile    string
	statsPort           int
	statsBind           string
	interval, stopAfter time.Duration
	ids                 *ids // set by check
}

// ids is who runs nutcracker, as resolved on the host.
type ids struct {
	uid, gid string
	asRoot   bool // the transport is logged in as root
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
	if c.logFile == c.outFile() || c.logFile == c.pidFile {
		return nil, fmt.Errorf("host %s: log_file %q: the same file as the pid file or nutcracker's output, %s", h.Name, c.logFile, c.outFile())
	}
	if c.interval <= 0 {
		c.interval = DefaultStatsInterval
	}
	if c.stopAfter <= 0 {
		c.stopAfter = DefaultStopTimeout
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

// check resolves the run-as user on the host and proves the transport's user may start
// nutcracker as it: root, or that very user.
// idsScript prints the login's effective uid, then the uid and gid of the user $1. Program
// starts are the cost of an operation on a host, so the login's uid comes from the shell's
// own /proc entry and the user's from /etc/passwd, read by the shell; a user only another
// user database knows takes one POSIX `id` (its "uid=N(name) gid=N(name)" form). A root
// login needs setpriv to start nutcracker as the user.
const idsScript = `set -e
self=
while read -r k r e _; do
	if [ "$k" = Uid: ]; then self=$e; break; fi
done </proc/self/status
[ -n "$self" ] || self=$(id -u)
if [ "$self" = 0 ] && ! command -v setpriv >/dev/null; then
	echo "setpriv not found: a root login needs it (util-linux) to start nutcracker as $1" >&2
	exit 1
fi
u= g=
if [ -r /etc/passwd ]; then
	while IFS=: read -r n _ pu pg _; do
		if [ "$n" = "$1" ]; then u=$pu g=$pg; break; fi
	done </etc/passwd
fi
if [ -z "$u" ]; then
	user=$(id -- "$1")
	set -- $user
	u=${1#uid=} g=${2#gid=}
	u=${u%%(*} g=${g%%(*}
fi
echo "$self $u $g"`

func (c *pidfile) check(ctx context.Context) error {
	res, err := hostRun(ctx, c.h, "sh", "-c", idsScript, "ids", c.user)
	if err != nil {
		return fmt.Errorf("process.user %q: %w", c.user, err)
	}
	f := strings.Fields(string(res.Stdout))
	if len(f) != 3 {
		return fmt.Errorf("host %s: id: unexpected output %q", c.h.Name, res.Stdout)
	}
	self, uid, gid := f[0], f[1], f[2]
	if uid == "0" {
		return fmt.Errorf("host %s: process.user %q has uid 0: %w", c.h.Name, c.user, ErrRunAsRoot)
	}
	if self != "0" && self != uid {
		return fmt.Errorf("host %s: %w: the transport logs in as uid %s, which can neither start nutcracker as %s (uid %s) nor stop it; log in as root or as %s",
			c.h.Name, ErrTransportUser, self, c.user, uid, c.user)
	}
	c.ids = &ids{uid: uid, gid: gid, asRoot: self == "0"}
	return nil
}

// restartScript stops the nutcracker patchctl runs on the host, waits until it is gone and
// the ports are free, then starts the new one, all in one command on the host so that the
// window without a listener is as short as the host allows. Logged in as root, it becomes
// the nutcracker user (setpriv) before it stops anything, so that once the old proxy is gone
// the only work left is nutcracker's exec up to its bind: no setpriv, no fork, and no
// daemonizing forks (see stopStartFuncs).
//
// Ours is: the pid in the pid file when it runs a slot's binary; failing that (no pid file,
// or a lost one) every process whose executable is a slot under the root; and an adopted
// process. One the nutcracker user may not signal (an adopted proxy of another user) is
// stopped as root first.
//
// $1 pid file, $2 stop timeout in 5 ms ticks, $3 listen ports (decimal, space-separated),
// $4 slots directory, $5 adopted "pid exe" or "", $6 owner "uid:gid" of the run and log
// directories and of nutcracker when the login is root, else "", $7 $8 those directories,
// $9 nutcracker's output file, $10 stopStartFuncs, $11 when patchctl issued this restart
// (Unix nanoseconds); then nutcracker's argv.
// It says on stdout what it waited for. Exit 3: the stop failed (a process survived SIGKILL),
// and said why; 4: a port stayed in use; 5: another restart held the lock; 6: a restart
// issued later has already run.
const restartScript = `set -u
pidf=$1 ticks=$2 ports=$3 slots=$4 adopted=$5 owner=$6 out=$9 funcs=${10} stamp=${11}
# One restart at a time: a patchctl killed mid-restart leaves this shell running, and the
# recovery's restart must not race it.
if command -v flock >/dev/null; then
	exec 9>>"${slots%/*}/.restart.lock" && flock -w 60 9 || { echo "another restart holds ${slots%/*}/.restart.lock" >&2; exit 5; }
fi
# Nor undo it: the restart of a killed patchctl can be so slow to start on a loaded host
# that the recovery's restart, issued after it, has already run; then it must do nothing.
last=
{ read -r last <"${slots%/*}/.restart.last"; } 2>/dev/null || :
case $last in ''|*[!0-9]*) last=0 ;; esac
if [ "$last" -gt "$stamp" ]; then echo "a restart issued later has already run" >&2; exit 6; fi
printf '%s\n' "$stamp" >"${slots%/*}/.restart.last" || exit 1
if [ ! -d "$7" ] || [ ! -d "$8" ]; then
	if [ -n "$owner" ]; then
		install -d -m 0755 -o "${owner%:*}" -g "${owner#*:}" -- "$7" "$8" || exit 1
	else
		install -d -m 0755 -- "$7" "$8" || exit 1
	fi
fi
shift 11
eval "$funcs"
` + portHolderFunc + `
pids=
if [ -s "$pidf" ]; then
	pid=
	read -r pid < "$pidf" || : # written without a newline, so read reports EOF
	case $pid in ''|*[!0-9]*) pid= ;; esac
	# A pid file outlives its process (SIGINT and SIGKILL leave it); only a process
	# running a slot's binary is ours to stop.
	if [ -n "$pid" ] && alive "$pid"; then
		for b in "$slots"/*/nutcracker; do # test -ef: no program start on the way
			if [ "/proc/$pid/exe" -ef "$b" ]; then pids=$pid; break; fi
		done
	fi
fi
if [ -z "$pids" ]; then
	pids=$(ls -l /proc/[0-9]*/exe 2>/dev/null | awk -v s=" -> $slots/" 'index($0, s) { n = split($0, a, "/"); for (i = 1; i < n; i++) if (a[i] == "proc") { print a[i+1]; break } }')
fi
if [ -n "$adopted" ]; then
	apid=${adopted%% *}
	if alive "$apid" && [ "$(readlink /proc/$apid/exe)" = "${adopted#* }" ]; then pids="$pids $apid"; fi
fi
# Nothing of ours runs, yet something else may hold the ports (a proxy on its way out on a
# loaded host): wait for them, bounded. Reading /proc/net/tcp costs milliseconds on a busy
# host, so only then, and as the login user, who can name any holder.
if [ -z "$pids" ]; then
	waited=
	for port in $ports; do
		n=0
		while holder=$(port_holder "$port"); [ -n "$holder" ]; do
			n=$((n + 1))
			if [ $n -gt $ticks ]; then echo "port $port is still in use by $holder after $((ticks * 5)) ms" >&2; exit 4; fi
			sleep 0.005
		done
		if [ $n -gt 0 ]; then waited="$waited port $port to be released ($((n * 5)) ms);"; fi
	done
	if [ -n "$waited" ]; then echo "waited for$waited"; fi
fi
if [ -z "$owner" ]; then
	stop_start "$pids" "$pidf" "$ticks" "$out" "$@"
	exit 0
fi
mine= others=
for pid in $pids; do
	u=
	{ while read -r k u _; do [ "$k" != Uid: ] || break; done </proc/$pid/status; } 2>/dev/null
	if [ "$u" = "${owner%:*}" ]; then mine="$mine $pid"; else others="$others $pid"; fi
done
as="setpriv --reuid=${owner%:*} --regid=${owner#*:} --init-groups --"
if [ -n "$others" ]; then
	# What the user's start needs is checked before anything stops.
	$as sh -c "$funcs"'
files_ok "$@"' files-ok "$pidf" "$out" || exit 1
	stop $others
fi
exec $as sh -c "$funcs"'
stop_start "$@"' stop-start "$mine" "$pidf" "$ticks" "$out" "$@"
`

// stopStartFuncs defines what the restart runs as the nutcracker user. It starts nutcracker
// without -d (whose two forks would stand between the old proxy's exit and the new one's
// bind) but detached as -d would leave it: umask 0, stdin and output off the terminal, its
// pid in the pid file (the Debian builds write none without -d, so the shell writes it),
// and in / so that it holds no login's directory. The start is forked before the stop and
// does the stop itself, so that once the old proxy is gone nothing but nutcracker's exec
// stands before the new one's bind. Like any command a non-interactive shell starts in the
// background, nutcracker ignores SIGINT until it installs its handler at start, and
// SIGQUIT for good.
const stopStartFuncs = `# alive PID: a thread of PID runs. The leader turns zombie as soon as it exits, while
# nutcracker's stats thread may still hold the files, sockets included, for a moment.
alive() {
	for t in /proc/$1/task/*/stat; do
		{ read -r st < "$t"; } 2>/dev/null || continue # gone meanwhile
		case $st in *") Z "*|*") X "*) ;; *) return 0 ;; esac
	done
	return 1
}
# stop PID...: SIGINT, then wait until each is gone, spinning first (the exit takes well
# under a millisecond when idle), SIGKILL after $ticks 5 ms ticks. Once all its threads are
# gone or zombies, a process's sockets are closed, so its ports are free.
stop() {
	w=
	for pid; do kill -INT "$pid" 2>/dev/null; done
	for pid; do
		n=0
		while alive "$pid"; do
			n=$((n + 1))
			if [ $n -gt 2000 ]; then sleep 0.005; fi
			if [ $n -eq $((2000 + ticks)) ]; then kill -KILL "$pid" 2>/dev/null; fi
			if [ $n -gt $((2400 + ticks)) ]; then echo "pid $pid did not exit $(((ticks + 400) * 5)) ms after SIGINT and SIGKILL" >&2; exit 3; fi
		done
		if [ $n -gt 2000 ]; then w="$w pid $pid to exit ($(((n - 2000) * 5)) ms);"; fi
	done
	if [ -n "$w" ]; then echo "waited for$w"; fi
}
# files_ok PIDFILE OUT: both writable (one left by another user replaced), which the start
# must not fail on once the old proxy is stopped.
files_ok() {
	{ : >>"$1"; } 2>/dev/null || { rm -f -- "$1" && : >"$1"; } || return 1
	{ : >"$2"; } 2>/dev/null || { rm -f -- "$2" && : >"$2"; }
}
# stop_start PIDS PIDFILE TICKS OUT ARGV...
stop_start() {
	pids=$1 pidf=$2 ticks=$3 out=$4
	shift 4
	bin=$1
	files_ok "$pidf" "$out" || exit 1
	# The child stops the old proxy (reporting on this command's stdout and stderr, 7 and 8),
	# says "go" and its pid on the command substitution's pipe and points its output at $out
	# (6), which ends the pipe here, then execs nutcracker. Once it has stopped the old proxy it
	# starts the new one even if this shell is gone (killed with its caller): SIGPIPE ignored,
	# its report and the "go" allowed to fail.
	exec 7>&1 8>&2
	# stop exits the child when the stop fails; it returns non-zero only when its report could
	# not be written.
	r=$( (trap '' PIPE && read -r me _ </proc/self/stat && { stop $pids >&7 2>&8 || :; } && { echo "go $me" 2>/dev/null || :; } &&
		exec >&6 2>&6 6>&- 7>&- 8>&- && cd / && umask 0 && exec "$@") </dev/null 6>"$out" 9>&- &)
	exec 7>&- 8>&-
	set -- $r
	[ "${1-}" = go ] || { echo "the stop of the old nutcracker did not complete" >&2; exit 3; }
	# The lock is held until the exec is done: a restart that came next (a recovery's) and
	# found the child still a shell would take it for none of ours and start a second proxy.
	# A loaded host can take milliseconds over it; a failed exec ends the wait too.
	n=0
	while [ -e "/proc/$2" ] && ! [ "/proc/$2/exe" -ef "$bin" ] 2>/dev/null; do
		n=$((n + 1))
		if [ $n -gt 200 ]; then sleep 0.005; fi
		if [ $n -gt $((200 + ticks)) ]; then break; fi
	done
	printf %s "$2" >"$pidf" || : # the restart's /proc scan finds nutcracker without it
}`

// portHolderFunc defines port_holder PORT: prints "pid N (comm)" of a process listening on
// the TCP port, "an unknown process" when the socket's owner cannot be read, nothing when
// the port is free.
const portHolderFunc = `port_holder() {
	hex=$(printf '%04X' "$1")
	inode=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10; exit }')
	[ -n "$inode" ] || return 0
	fd=$(find /proc/[0-9]*/fd -lname "socket:\[$inode\]" 2>/dev/null | head -n 1)
	if [ -z "$fd" ]; then echo "an unknown process"; return 0; fi
	hp=${fd#/proc/}; hp=${hp%%/*}
	echo "pid $hp ($(cat /proc/$hp/comm 2>/dev/null))"
}`

func (c *pidfile) restart(ctx context.Context, rs restartSpec) (string, error) {
	if c.ids == nil {
		if err := c.check(ctx); err != nil {
			return "", err
		}
	}
	var owner string
	if c.ids.asRoot {
		owner = c.ids.uid + ":" + c.ids.gid
	}
	ports := []string{strconv.Itoa(c.statsPort)}
	for _, p := range rs.Ports {
		ports = append(ports, strconv.Itoa(p))
	}
	var adopted string
	if a := rs.Adopted; a != nil {
		adopted = strconv.Itoa(a.PID) + " " + a.Exe
	}
	start := []string{hostFS{c.h}.current(), "-p", c.pidFile, "-c", c.h.Config,
		"-s", strconv.Itoa(c.statsPort), "-a", c.statsBind, "-o", c.logFile,
		"-i", strconv.FormatInt(c.interval.Milliseconds(), 10)}
	ticks := int(c.stopAfter / (5 * time.Millisecond))
	argv := append([]string{"sh", "-c", restartScript, "restart", c.pidFile,
		strconv.Itoa(ticks), strings.Join(ports, " "), path.Join(c.h.Root, "slots"), adopted, owner,
		path.Dir(c.pidFile), path.Dir(c.logFile), c.outFile(), stopStartFuncs,
		strconv.FormatInt(time.Now().UnixNano(), 10)}, start...)
	res, err := c.h.Transport.Run(ctx, argv, nil)
	waited := oneLine(string(res.Stdout))
	if err != nil {
		var exit *transport.ExitError
		if errors.As(err, &exit) && (exit.Status >= 3 && exit.Status <= 6) {
			return waited, fmt.Errorf("host %s: stop nutcracker: %w", c.h.Name, err)
		}
		return waited, fmt.Errorf("host %s: start nutcracker: %w", c.h.Name, err)
	}
	return waited, nil
}

// outFile is where nutcracker's own output goes: what it says before its log is open.
func (c *pidfile) outFile() string { return strings.TrimSuffix(c.pidFile, ".pid") + ".out" }

// downScript exits 0 when a process runs from a slot under $1, else prints what
// nutcracker logged to $2 since its last start (its banner lines left out), then the end
// of its output, $3 (its complaints before its log is open).
const downScript = `if ls -l /proc/[0-9]*/exe 2>/dev/null | grep -qF " -> $1/"; then exit 0; fi
[ -r "$2" ] && tail -n 200 -- "$2" | awk '/ started on pid / { n = 0; next } !/ rabbit (run|done)/ { sub(/^\[[^]]*\] [^ ]* /, ""); l[n++] = $0 } END { for (i = 0; i < n; i++) print l[i] }' | tail -n 3
[ -r "$3" ] && tail -n 3 -- "$3"
exit 1`

func (c *pidfile) down(ctx context.Context) error {
	res, err := c.h.Transport.Run(ctx, []string{"sh", "-c", downScript, "down", path.Join(c.h.Root, "slots"), c.logFile, c.outFile()}, nil)
	var exit *transport.ExitError
	if !errors.As(err, &exit) || exit.Status != 1 {
		return nil // running, or the host cannot tell now: the smoke test keeps waiting
	}
	why := oneLine(string(res.Stdout))
	if why == "" {
		why = "nothing in " + c.logFile
	}
	return fmt.Errorf("host %s: nutcracker exited at start: %s", c.h.Name, why)
}

// oneLine joins trimmed non-empty lines with "; ".
func oneLine(s string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}
