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
runs=${RUNS:-10}
. "$(dirname "$0")/lib.sh"

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
start_daemon
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
