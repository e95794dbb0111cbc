#!/usr/bin/env bash
# Lints the 1,000-pool / 20,000-server nutcracker.yml through the patchctl command and with
# `nutcracker -t`, and times start-up (`patchctl --help`, `patchctl lint` of a one-pool file).
# Wall time: bash's microsecond clock ($EPOCHREALTIME, no fork of its own) around each of RUNS
# runs; the median and the fastest are printed. /usr/bin/time only counts in 10 ms steps, so it
# is used only for the max RSS (largest of RUNS separate runs).
# Usage: bash bench/lint.sh [RUNS]   (run from the repository root; needs .testbin)
# PATCHCTL=path measures that build instead of building ./cmd/patchctl (e.g. an older one).
set -euo pipefail
runs=${1:-21}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -n ${PATCHCTL:-} ]]; then
  cp "$PATCHCTL" "$work/patchctl"
else
  go build -o "$work/patchctl" ./cmd/patchctl
fi
go run ./bench/genconf > "$work/big.yml"
go run ./bench/genconf -pools 1 -servers 1 > "$work/small.yml"
nc=.testbin/nutcracker-0.5.0

measure() { # name, command...
  local name=$1; shift
  local walls=() rss=0 t0 t1 kb
  "$@" >/dev/null 2>&1 || true # warm the page cache
  for _ in $(seq "$runs"); do
    t0=${EPOCHREALTIME/[.,]/}
    "$@" >/dev/null 2>&1 || true
    t1=${EPOCHREALTIME/[.,]/}
    walls+=($(( t1 - t0 )))
    /usr/bin/time -f '%M' -o "$work/t" "$@" >/dev/null 2>&1 || true
    kb=$(tail -n 1 "$work/t")
    (( kb > rss )) && rss=$kb
  done
  local sorted median fastest
  sorted=$(printf '%s\n' "${walls[@]}" | sort -n)
  median=$(sed -n "$(( (runs + 1) / 2 ))p" <<<"$sorted")
  fastest=$(head -n 1 <<<"$sorted")
  printf '%-28s median %7.1f ms  fastest %7.1f ms  max RSS %6d KiB\n' "$name" \
    "$(bc <<<"scale=1; $median/1000")" "$(bc <<<"scale=1; $fastest/1000")" "$rss"
  last_median=$median last_rss=$rss
}

measure "nutcracker -t (big)" "$nc" -t -c "$work/big.yml"
nc_median=$last_median nc_rss=$last_rss
measure "patchctl lint (big)" "$work/patchctl" lint --target-version 0.5.0 "$work/big.yml"
printf 'patchctl lint / nutcracker -t (big): wall %.2fx, max RSS %.2fx\n' \
  "$(bc -l <<<"$last_median/$nc_median")" "$(bc -l <<<"$last_rss/$nc_rss")"
measure "nutcracker -t (one pool)" "$nc" -t -c "$work/small.yml"
measure "patchctl lint (one pool)" "$work/patchctl" lint --target-version 0.5.0 "$work/small.yml"
measure "patchctl --help" "$work/patchctl" --help
GODEBUG=inittrace=1 "$work/patchctl" --help 2>&1 >/dev/null |
  awk '{ms+=$5; b+=$8} END {printf "package init of the binary: %.1f ms, %d bytes allocated\n", ms, b}'
