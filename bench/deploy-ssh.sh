#!/usr/bin/env bash
# Times `patchctl deploy --host` through the CLI and the daemon on a local host and on the
# same kind of host reached over SSH (a real OpenSSH server on loopback, logged in as root),
# and prints the ratio (target: SSH at most 2x local plus the network round trips, which
# loopback does not add). Each deploy switches between nutcracker 0.4.1 and 0.5.0 on a
# pidfile host with one redis pool. It also times a bare login (`ssh HOST true` with the
# OpenSSH client), which every SSH operation pays once: connection, authentication and the
# login shell's start-up files, which the transport cannot avoid. Needs root, sshd, ssh,
# ssh-keygen, redis-server and redis-cli.
#
#   bash bench/deploy-ssh.sh          # 6 deploys each
#   RUNS=10 bash bench/deploy-ssh.sh
runs=${RUNS:-6}
. "$(dirname "$0")/lib.sh"

# --- sshd on loopback, accepting a fresh key for root ---
ssh_port=$(free_port)
keys=$work/sshd
mkdir -p "$keys" /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$keys/host" >/dev/null
ssh-keygen -q -t ed25519 -N '' -f "$keys/id" >/dev/null
cp "$keys/id.pub" "$keys/authorized_keys"
echo "[127.0.0.1]:$ssh_port $(cut -d' ' -f1,2 "$keys/host.pub")" >"$keys/known_hosts"
cat >"$keys/sshd_config" <<CONF
Port $ssh_port
ListenAddress 127.0.0.1
HostKey $keys/host
AuthorizedKeysFile $keys/authorized_keys
PidFile none
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
CONF
"$(command -v sshd)" -D -e -f "$keys/sshd_config" 2>"$work/sshd.log" &
pids+=($!)
within 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$ssh_port" 2>/dev/null

# --- two pidfile hosts that differ only in their transport ---
: >"$work/inventory.yml"
echo "hosts:" >>"$work/inventory.yml"
for h in local ssh; do
	mkdir -p "$work/$h"
	listen=$(free_port) stats=$(free_port)
	nutconf "$work/$h" "$listen"
	transport="{type: local}"
	if [ "$h" = ssh ]; then
		transport="{type: ssh, address: '127.0.0.1:$ssh_port', user: root, identity_file: $keys/id, known_hosts: $keys/known_hosts}"
	fi
	cat >>"$work/inventory.yml" <<YML
  - name: $h
    environment: bench
    stats: 127.0.0.1:$stats
    config: $work/$h/nutcracker.yml
    transport: $transport
    deploy: {root: $work/$h/nc, restart: pidfile, user: nutcracker}
YML
done
start_daemon

declare -A times
for h in local ssh; do
	pc deploy --host "$h" --version 0.4.1 >/dev/null # the first install is not timed
	v=0.5.0
	for _ in $(seq "$runs"); do
		t0=$(now_ms)
		pc deploy --host "$h" --version "$v" >/dev/null
		times[$h]+="$(($(now_ms) - t0)) "
		v=$([ "$v" = 0.4.1 ] && echo 0.5.0 || echo 0.4.1)
	done
done

for _ in $(seq "$runs"); do
	t0=$(now_ms)
	ssh -q -o BatchMode=yes -o UserKnownHostsFile="$keys/known_hosts" -i "$keys/id" -p "$ssh_port" root@127.0.0.1 true
	times[login]+="$(($(now_ms) - t0)) "
done

l=$(printf '%s\n' ${times[local]} | median)
s=$(printf '%s\n' ${times[ssh]} | median)
echo "runs:                         $runs each"
echo "patchctl deploy, local (CLI): median ${l} ms   (all: ${times[local]})"
echo "patchctl deploy, ssh (CLI):   median ${s} ms   (all: ${times[ssh]})"
g=$(printf '%s\n' ${times[login]} | median)
echo "bare ssh login (ssh true):    median ${g} ms   (all: ${times[login]})"
awk -v s="$s" -v l="$l" -v g="$g" 'BEGIN {
	printf "ratio ssh / local:            %.2f (target <= 2)\n", s / l
	printf "ratio (ssh - login) / local:  %.2f (what the transport adds beyond one login)\n", (s - g) / l }'
