#!/usr/bin/env bash
# Installs what the test suite runs for real: nutcracker 0.5.0 and 0.4.1 (Debian packages),
# redis-server, memcached and an OpenSSH server. Idempotent; needs root for apt-get.
# The two nutcracker binaries are unpacked side by side into $PATCHCTL_TESTBIN
# (default: .testbin in the repository) as nutcracker-0.5.0 and nutcracker-0.4.1,
# together with the .deb files they came from (artifact tests use those).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${PATCHCTL_TESTBIN:-$repo/.testbin}
mkdir -p "$bin"

need=()
for cmd in redis-server memcached sshd nutcracker ssh-keygen; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$cmd")
done
if [ ${#need[@]} -gt 0 ] || [ ! -f "$bin/nutcracker-0.4.1" ] || [ ! -f "$bin/nutcracker-0.5.0" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test-deps: missing ${need[*]:-nutcracker builds}; run as root so apt-get can install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d stops the packages from starting their services: tests start their own.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get install -y -qq --no-install-recommends \
    nutcracker libyaml-0-2 redis-server memcached openssh-server openssh-client >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"; rm -f /usr/sbin/policy-rc.d 2>/dev/null || true' EXIT

if [ ! -f "$bin/nutcracker-0.5.0" ]; then
  (cd "$work" && apt-get download nutcracker=0.5.0+dfsg-2 >/dev/null)
  cp "$work"/nutcracker_0.5.0*.deb "$bin/nutcracker_0.5.0.deb"
  dpkg -x "$bin/nutcracker_0.5.0.deb" "$work/x050"
  install -m 0755 "$work/x050/usr/sbin/nutcracker" "$bin/nutcracker-0.5.0"
fi

if [ ! -f "$bin/nutcracker-0.4.1" ]; then
  # 0.4.1 lives in the previous Debian suite: derive its sources from this machine's own,
  # and keep apt's state for it private.
  src=$(ls /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
  mkdir -p "$work/parts" "$work/lists/partial"
  if [ -n "$src" ]; then
    sed 's/bookworm/bullseye/g' "$src" > "$work/parts/prev.sources"
  else
    sed 's/bookworm/bullseye/g' /etc/apt/sources.list > "$work/parts/prev.list"
  fi
  o=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$work/parts" -o "Dir::State::Lists=$work/lists")
  apt-get "${o[@]}" update -qq
  (cd "$work" && apt-get "${o[@]}" download nutcracker=0.4.1+dfsg-1 >/dev/null)
  cp "$work"/nutcracker_0.4.1*.deb "$bin/nutcracker_0.4.1.deb"
  dpkg -x "$bin/nutcracker_0.4.1.deb" "$work/x041"
  install -m 0755 "$work/x041/usr/sbin/nutcracker" "$bin/nutcracker-0.4.1"
fi

# The .deb files are pinned: tests that verify artifacts rely on these exact bytes.
echo "841e36cd2cd3bc7f88f7303f13ee937f5abf8e0a6fd557eb2d369481fa83e0b7  $bin/nutcracker_0.4.1.deb
5aa9c477e2045d098317bcdf8bf01016ea3515c51d6c52b943d1d596eec82ac7  $bin/nutcracker_0.5.0.deb" | sha256sum -c --quiet -
for v in 0.4.1 0.5.0; do
  "$bin/nutcracker-$v" -V 2>&1 | head -n 1 | tr -d '\r' | grep -qx "This is nutcracker-$v" \
    || { echo "test-deps: $bin/nutcracker-$v does not report $v" >&2; exit 1; }
done
echo "test-deps: nutcracker 0.4.1 and 0.5.0 in $bin; redis-server, memcached, sshd installed"
