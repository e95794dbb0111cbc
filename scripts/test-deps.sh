#!/usr/bin/env bash
# Installs what the test suite runs for real: nutcracker 0.5.0 and 0.4.1 (Debian packages),
# redis-server, memcached, an OpenSSH server, and zsh and fish (the completion scripts are
# tested in each shell). Idempotent; needs root for apt-get.
# The two nutcracker binaries are unpacked side by side into $PATCHCTL_TESTBIN
# (default: .testbin in the repository) as nutcracker-0.5.0 and nutcracker-0.4.1,
# together with the .deb files they came from (artifact tests use those).
#
# Deterministic by construction: no pipeline whose reader may exit before its writer
# (under pipefail the writer's SIGPIPE fails the script at random), no command
# substitution whose failure ends the script silently, and nothing of the machine's own
# left changed (an existing policy-rc.d is put back as it was).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${PATCHCTL_TESTBIN:-$repo/.testbin}
mkdir -p "$bin"

# Debian releases, oldest first: the suite before the machine's own is where older
# packages (nutcracker 0.4.1) live.
debian_suites=(stretch buster bullseye bookworm trixie forky)

work=$(mktemp -d)
policy=/usr/sbin/policy-rc.d
policy_saved=""
policy_ours=""
cleanup() {
  if [ -n "$policy_ours" ]; then
    if [ -n "$policy_saved" ]; then
      mv -f "$policy_saved" "$policy"
    else
      rm -f "$policy"
    fi
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# block_services installs a policy-rc.d that stops packages from starting their services
# (tests start their own), keeping any existing one to restore on exit.
block_services() {
  if [ -e "$policy" ] || [ -L "$policy" ]; then
    policy_saved="$work/policy-rc.d.saved"
    cp -a "$policy" "$policy_saved"
  fi
  policy_ours=1
  printf '#!/bin/sh\nexit 101\n' > "$policy.patchctl.tmp"
  chmod 0755 "$policy.patchctl.tmp"
  mv -f "$policy.patchctl.tmp" "$policy"
}

# os_codename prints this machine's release codename from /etc/os-release.
os_codename() {
  local VERSION_CODENAME="" ID=""
  # shellcheck disable=SC1091
  [ -r /etc/os-release ] && . /etc/os-release
  if [ -z "$VERSION_CODENAME" ]; then
    echo "test-deps: /etc/os-release names no VERSION_CODENAME; cannot tell which Debian suite to use" >&2
    return 1
  fi
  if [ "$ID" != debian ]; then
    echo "test-deps: this is $ID ($VERSION_CODENAME), not Debian: nutcracker 0.4.1 is fetched from Debian's own suites only" >&2
    return 1
  fi
  echo "$VERSION_CODENAME"
}

# older_suites prints the Debian suites before $1, newest first.
older_suites() {
  local i found=""
  for ((i = ${#debian_suites[@]} - 1; i >= 0; i--)); do
    if [ -n "$found" ]; then
      echo "${debian_suites[i]}"
    elif [ "${debian_suites[i]}" = "$1" ]; then
      found=1
    fi
  done
  if [ -z "$found" ]; then
    echo "test-deps: unknown Debian codename $1 (known: ${debian_suites[*]})" >&2
    return 1
  fi
}

# version_ok checks that a binary's -V banner names the version. The whole banner is read
# (nutcracker 0.5.0 writes it in several writes): cutting it short would kill the writer.
version_ok() {
  local out first
  out=$("$1" -V 2>&1) || return 1
  first=${out%%$'\n'*}
  [ "${first%$'\r'}" = "This is nutcracker-$2" ]
}

need=()
for cmd in redis-server memcached sshd nutcracker ssh-keygen zsh fish; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$cmd")
done
if [ ${#need[@]} -gt 0 ] || [ ! -f "$bin/nutcracker-0.4.1" ] || [ ! -f "$bin/nutcracker-0.5.0" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test-deps: missing ${need[*]:-nutcracker builds}; run as root so apt-get can install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  block_services
  apt-get install -y -qq --no-install-recommends \
    nutcracker libyaml-0-2 redis-server memcached openssh-server openssh-client zsh fish >/dev/null
fi

if [ ! -f "$bin/nutcracker-0.5.0" ]; then
  (cd "$work" && apt-get download nutcracker=0.5.0+dfsg-2 >/dev/null)
  cp "$work"/nutcracker_0.5.0*.deb "$bin/nutcracker_0.5.0.deb"
  dpkg -x "$bin/nutcracker_0.5.0.deb" "$work/x050"
  install -m 0755 "$work/x050/usr/sbin/nutcracker" "$bin/nutcracker-0.5.0"
fi

if [ ! -f "$bin/nutcracker-0.4.1" ]; then
  # 0.4.1 lives in an older Debian suite: derive its sources from this machine's own (every
  # file naming the current suite, one-line or deb822), trying the suites before it newest
  # first, and keep apt's state for them private.
  current=$(os_codename)
  older=$(older_suites "$current")
  shopt -s nullglob
  sources=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && grep -qw -- "$current" "$f" && sources+=("$f")
  done
  shopt -u nullglob
  if [ ${#sources[@]} -eq 0 ]; then
    echo "test-deps: no apt source names the suite $current; cannot derive an older suite's sources" >&2
    exit 1
  fi
  got=""
  for suite in $older; do
    rm -rf "$work/parts" "$work/lists"
    mkdir -p "$work/parts" "$work/lists/partial"
    n=0
    for f in "${sources[@]}"; do
      n=$((n + 1))
      ext=list
      case "$f" in *.sources) ext=sources ;; esac
      sed "s/\\b$current\\b/$suite/g" "$f" > "$work/parts/$n-$suite.$ext"
    done
    o=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$work/parts" -o "Dir::State::Lists=$work/lists")
    if apt-get "${o[@]}" update -qq && (cd "$work" && apt-get "${o[@]}" download nutcracker=0.4.1+dfsg-1 >/dev/null); then
      got=$suite
      break
    fi
    echo "test-deps: nutcracker 0.4.1 is not in $suite; trying an older suite" >&2
  done
  if [ -z "$got" ]; then
    echo "test-deps: nutcracker 0.4.1+dfsg-1 found in none of the suites before $current ($(echo $older))" >&2
    exit 1
  fi
  cp "$work"/nutcracker_0.4.1*.deb "$bin/nutcracker_0.4.1.deb"
  dpkg -x "$bin/nutcracker_0.4.1.deb" "$work/x041"
  install -m 0755 "$work/x041/usr/sbin/nutcracker" "$bin/nutcracker-0.4.1"
fi

# The .deb files are pinned: tests that verify artifacts rely on these exact bytes.
echo "841e36cd2cd3bc7f88f7303f13ee937f5abf8e0a6fd557eb2d369481fa83e0b7  $bin/nutcracker_0.4.1.deb
5aa9c477e2045d098317bcdf8bf01016ea3515c51d6c52b943d1d596eec82ac7  $bin/nutcracker_0.5.0.deb" | sha256sum -c --quiet -
for v in 0.4.1 0.5.0; do
  version_ok "$bin/nutcracker-$v" "$v" || { echo "test-deps: $bin/nutcracker-$v does not report $v" >&2; exit 1; }
done
echo "test-deps: nutcracker 0.4.1 and 0.5.0 in $bin; redis-server, memcached, sshd installed"
