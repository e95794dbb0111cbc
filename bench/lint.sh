#!/usr/bin/env bash
# Lints the 1,000-pool / 20,000-server nutcracker.yml through the patchctl command and with
# `nutcracker -t`, and times start-up (`patchctl --help`, `patchctl lint` of a one-pool file).
# Prints the median wall time and the largest max RSS of RUNS runs of each.
# Usage: bash bench/lint.sh [RUNS]   (run from the repository root; needs .testbin)
set -euo pipefail
runs=${1:-9}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/patchctl" ./cmd/patchctl
go run ./bench/genconf > "$work/big.yml"
go run ./bench/genconf -pools 1 -servers 1 > "$work/small.yml"
nc=.testbin/nutcracker-0.5.0

measure() { # name, command...
  local name=$1; shift
  local walls=() rss=0
  for _ in $(seq "$runs"); do
    /usr/bin/time -f '%e %M' -o "$work/t" "$@" >/dev/null 2>&1 || true
    read -r wall kb < "$work/t"
    walls+=("$wall")
    (( kb > rss )) && rss=$kb
  done
  local median
  median=$(printf '%s\n' "${walls[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
  printf '%-40s median %6.3f s   max RSS %6d KiB\n' "$name" "$median" "$rss"
}

measure "nutcracker -t (big)" "$nc" -t -c "$work/big.yml"
measure "patchctl lint (big)" "$work/patchctl" lint --target-version 0.5.0 "$work/big.yml"
measure "nutcracker -t (one pool)" "$nc" -t -c "$work/small.yml"
measure "patchctl lint (one pool)" "$work/patchctl" lint --target-version 0.5.0 "$work/small.yml"
measure "patchctl --help" "$work/patchctl" --help
GODEBUG=inittrace=1 "$work/patchctl" --help 2>&1 >/dev/null |
  awk '{ms+=$5; b+=$8} END {printf "package init of the binary: %.1f ms, %d bytes allocated\n", ms, b}'
