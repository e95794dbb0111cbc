#!/usr/bin/env bash
# Times `patchctl rollback --host` through the CLI and the daemon against a hand-written
# copy/restart/PING script on a local host, and prints the ratio (target: at most 1.5).
#
# Both sides run the same nutcracker builds (.testbin/nutcracker-0.4.1 and -0.5.0) with
# the same kind of nutcracker.yml (one redis pool), as the same unprivileged user, switching
# between the two builds. Needs root (nutcracker runs as the nutcracker user), redis-server
# and redis-cli.
#
#   bash bench/rollback.sh            # 10 rollbacks each
#   RUNS=20 bash bench/rollback.sh
set -euo pipefail

runs=${RUNS:-10}
repo=$(cd "$(dirname "$0")/.." && pwd)
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
	for f in "$work"/hand/run/nutcracker.pid "$work"/nc/run/nutcracker.pid; do
		[ -s "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || :
	done
	[ -s "$work/redis.pid" ] && kill "$(cat "$work/redis.pid")" 2>/dev/null || :
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

# --- patchctl: daemon in a temp dir, one local pidfile host ---
listen=$(free_port) stats=$(free_port)
nutconf "$work" "$listen"
cat >"$work/inventory.yml" <<YML
hosts:
  - name: bench
    environment: bench
    stats: 127.0.0.1:$stats
    config: $work/nutcracker.yml
    transport: {type: local}
    deploy: {root: $work/nc, restart: pidfile, user: nutcracker}
YML
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
pc() { "$work/patchctl" --config "$work/patchctl.yml" "$@" 2> >(grep -v 'WARNING: running as root' >&2); }
"$work/patchctl" --config "$work/patchctl.yml" daemon >"$work/daemon.log" 2>&1 &
pids+=($!)
within 60 pc status -o json >/dev/null 2>&1
pc deploy --host bench --version 0.4.1 >/dev/null
pc deploy --host bench --version 0.5.0 >/dev/null

cli=()
for _ in $(seq "$runs"); do
	t0=$(now_ms)
	pc rollback --host bench >/dev/null
	cli+=($(($(now_ms) - t0)))
done

# --- the hand script: copy the other build in place, stop, start, PING until PONG ---
hand=$work/hand
mkdir -p "$hand/run" "$hand/log"
chown nutcracker "$hand/run" "$hand/log"
hlisten=$(free_port) hstats=$(free_port)
nutconf "$hand" "$hlisten"
start_hand() {
	setpriv --reuid=nutcracker --regid=nutcracker --init-groups -- "$hand/nutcracker" -d -p "$hand/run/nutcracker.pid" \
		-c "$hand/nutcracker.yml" -s "$hstats" -a 127.0.0.1 -o "$hand/log/nutcracker.log" -i 1000
}
cp "$bins/nutcracker-0.5.0" "$hand/nutcracker"
start_hand
within 30 pong "$hlisten"
next=0.4.1
hands=()
for _ in $(seq "$runs"); do
	within 30 test -s "$hand/run/nutcracker.pid" # written just after the start returned
	t0=$(now_ms)
	cp "$bins/nutcracker-$next" "$hand/nutcracker.new" && mv -f "$hand/nutcracker.new" "$hand/nutcracker"
	pid=$(cat "$hand/run/nutcracker.pid")
	kill -INT "$pid"
	within 30 gone "$pid"
	start_hand
	within 30 pong "$hlisten"
	hands+=($(($(now_ms) - t0)))
	next=$([ "$next" = 0.4.1 ] && echo 0.5.0 || echo 0.4.1)
done

if [ -n "${SHOW_STEPS:-}" ]; then pc history --host bench | tail -n 8 >&2; fi
c=$(printf '%s\n' "${cli[@]}" | median)
h=$(printf '%s\n' "${hands[@]}" | median)
echo "runs:                          $runs each"
echo "patchctl rollback (CLI):       median ${c} ms   (all: ${cli[*]})"
echo "hand copy/restart/PING script: median ${h} ms   (all: ${hands[*]})"
awk -v c="$c" -v h="$h" 'BEGIN { printf "ratio CLI / hand:              %.2f (target <= 1.5)\n", c / h }'
