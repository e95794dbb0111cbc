# Shared by the bench/ scripts: checks, a work directory cleaned up on exit, a redis, and a
# patchctl daemon serving an inventory. Source it after setting runs; it sets repo, bins,
# work, redis_port and pids, and defines the helpers below.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bins=$repo/.testbin
for v in 0.4.1 0.5.0; do
	[ -x "$bins/nutcracker-$v" ] || { echo "missing $bins/nutcracker-$v (run scripts/test-deps.sh)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "run as root: nutcracker runs as the nutcracker user" >&2; exit 2; }

work=$(mktemp -d)
chmod 0755 "$work"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || :; wait "$p" 2>/dev/null || :; done
	for f in "$work"/*/run/nutcracker.pid "$work"/*/nc/run/nutcracker.pid; do
		[ -s "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || :
	done
	if [ -s "$work/redis.pid" ]; then
		# redis writes its log as it exits: wait, so that the directory can be removed.
		local rp
		rp=$(cat "$work/redis.pid")
		kill "$rp" 2>/dev/null && within 30 gone "$rp" || :
	fi
	rm -rf -- "$work"
}
trap cleanup EXIT

# free_port prints a loopback TCP port nothing listens on.
free_port() {
	local p
	while :; do
		p=$((10000 + RANDOM % 22000)) # below the ephemeral range, which outgoing connections use
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
	done
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# within SECONDS CMD...: runs CMD until it succeeds, for at most SECONDS.
within() {
	local end=$(($(date +%s) + $1))
	shift
	until "$@"; do
		if [ "$(date +%s)" -ge "$end" ]; then echo "gave up after waiting for: $*" >&2; exit 1; fi
	done
}
pong() { redis-cli -p "$1" PING 2>/dev/null | grep -q PONG; }
# gone PID: the process exited (a zombie counts: its ports are already released).
gone() { ! grep -qv ') Z ' "/proc/$1/stat" 2>/dev/null; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
	--pidfile "$work/redis.pid" --logfile "$work/redis.log"
within 30 pong "$redis_port"

# nutconf DIR LISTEN: a nutcracker.yml with one redis pool.
nutconf() {
	printf 'r:\n  listen: 127.0.0.1:%s\n  redis: true\n  hash: fnv1a_64\n  distribution: ketama\n  timeout: 400\n  servers:\n   - 127.0.0.1:%s:1\n' \
		"$2" "$redis_port" >"$1/nutcracker.yml"
	chmod 0644 "$1/nutcracker.yml"
}

echo "building patchctl" >&2
(cd "$repo" && go build -o "$work/patchctl" ./cmd/patchctl)

# pc runs the CLI as a user would. Its stderr goes to a file, shown when it fails: a filter
# on a pipe (for the warning about running as root) would add a process to every timed call.
pc() {
	local rc=0
	"$work/patchctl" --config "$work/patchctl.yml" "$@" 2>"$work/cli.err" || rc=$?
	if [ "$rc" -ne 0 ]; then grep -v 'WARNING: running as root' "$work/cli.err" >&2 || :; fi
	return "$rc"
}

# start_daemon: a patchctl daemon in $work serving $work/inventory.yml, which the caller wrote.
start_daemon() {
	mkdir -p "$work/data"
	cat >"$work/patchctl.yml" <<YML
data_dir: $work/data
metrics: {listen: ''}
log: {level: warn}
github: {api_url: 'http://127.0.0.1:1'}
inventory: {file: $work/inventory.yml}
artifacts:
  sources:
    - {kind: binary, path: '$bins/nutcracker-{{.Version}}'}
YML
	"$work/patchctl" --config "$work/patchctl.yml" daemon >"$work/daemon.log" 2>&1 &
	pids+=($!)
	within 60 pc status -o json >/dev/null 2>&1
}
