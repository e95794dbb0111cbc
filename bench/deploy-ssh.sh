#!/usr/bin/env bash
# Times `patchctl deploy --host` through the CLI and the daemon on a local host and on the
# same kind of host reached over SSH (a real OpenSSH server on loopback, logged in as root),
# and prints the ratio (target: SSH at most 2x local plus the network round trips, which
# loopback does not add). Each deploy switches between nutcracker 0.4.1 and 0.5.0 on a
# pidfile host with one redis pool. It also times a bare login (`ssh HOST true` with the
# OpenSSH client), which every SSH operation pays once: connection, authentication and the
# login shell's start-up files, which the transport cannot avoid. Root's login shell may be
# slow to start (its ~/.bashrc is sourced for every SSH login), so a third host logs in as a
# user created for the run, whose login shell is /bin/sh and who is also the user its
# nutcracker runs as (a transport user patchctl accepts for pidfile hosts): that host shows
# the transport's cost on a host whose login is quick. Needs root, useradd/userdel, sshd,
# ssh, ssh-keygen, redis-server and redis-cli.
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

# --- a login user with a plain shell, for the third host (password "*": no password login,
# but not a locked account, which sshd refuses without PAM) ---
plain=pcbench$$
useradd --system --password "*" --home-dir "$work/home-$plain" --shell /bin/sh "$plain"
trap 'cleanup; userdel "$plain" 2>/dev/null || :' EXIT # after its processes ended
mkdir -p "$work/home-$plain"

# --- pidfile hosts that differ only in their transport (and the third in its user) ---
: >"$work/inventory.yml"
echo "hosts:" >>"$work/inventory.yml"
for h in local ssh ssh-plain; do
	mkdir -p "$work/$h/nc"
	listen=$(free_port) stats=$(free_port)
	nutconf "$work/$h" "$listen"
	transport="{type: local}" runas=nutcracker
	case $h in
	ssh) transport="{type: ssh, address: '127.0.0.1:$ssh_port', user: root, identity_file: $keys/id, known_hosts: $keys/known_hosts}" ;;
	ssh-plain)
		transport="{type: ssh, address: '127.0.0.1:$ssh_port', user: $plain, identity_file: $keys/id, known_hosts: $keys/known_hosts}"
		runas=$plain
		chown -R "$plain" "$work/$h/nc" "$work/home-$plain"
		;;
	esac
	cat >>"$work/inventory.yml" <<YML
  - name: $h
    environment: bench
    stats: 127.0.0.1:$stats
    config: $work/$h/nutcracker.yml
    transport: $transport
    deploy: {root: $work/$h/nc, restart: pidfile, user: $runas}
YML
done
start_daemon

declare -A times
for h in local ssh ssh-plain; do
	pc deploy --host "$h" --version 0.4.1 >/dev/null # the first install is not timed
	v=0.5.0
	for _ in $(seq "$runs"); do
		t0=$(now_ms)
		pc deploy --host "$h" --version "$v" >/dev/null
		times[$h]+="$(($(now_ms) - t0)) "
		v=$([ "$v" = 0.4.1 ] && echo 0.5.0 || echo 0.4.1)
	done
done

for u in root "$plain"; do
	for _ in $(seq "$runs"); do
		t0=$(now_ms)
		ssh -q -o BatchMode=yes -o UserKnownHostsFile="$keys/known_hosts" -i "$keys/id" -p "$ssh_port" "$u@127.0.0.1" true
		times[login-$u]+="$(($(now_ms) - t0)) "
	done
done

l=$(printf '%s\n' ${times[local]} | median)
echo "runs:                              $runs each"
echo "patchctl deploy, local (CLI):      median ${l} ms   (all: ${times[local]})"
for h in ssh ssh-plain; do
	u=root
	[ "$h" = ssh-plain ] && u=$plain
	s=$(printf '%s\n' ${times[$h]} | median)
	g=$(printf '%s\n' ${times[login-$u]} | median)
	printf '%-34s median %s ms   (all: %s)\n' "patchctl deploy, $h (CLI):" "$s" "${times[$h]}"
	printf '%-34s median %s ms   (all: %s)\n' "bare ssh login as ${u%%[0-9]*}:" "$g" "${times[login-$u]}"
	awk -v s="$s" -v l="$l" -v g="$g" -v h="$h" 'BEGIN {
		printf "  ratio %s / local:           %.2f (target <= 2)\n", h, s / l
		printf "  ratio (%s - login) / local: %.2f (what the transport adds beyond one login)\n", h, (s - g) / l }'
done
