#!/usr/bin/env bash
# Runs the whole test suite (scripts/test.sh) N times in a row (default 5) while busy loops
# occupy every core, as on a shared, loaded CI machine. Prints each run's duration and
# result, then "N passed, N failed"; exits 1 if any run failed. Extra arguments go to
# scripts/test.sh (and from there to go test), e.g. `stress-test.sh 3 -run TestSSH ./transport/`.
# Each run's output is kept in a log file whose path is printed when the run fails.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-5}
[ $# -gt 0 ] && shift
case "$runs" in
  '' | *[!0-9]* | 0) echo "stress-test: the number of runs must be a positive integer, got '$runs'" >&2; exit 2 ;;
esac

logs=$(mktemp -d)
busy=()
stop_busy() {
  local pid
  for pid in "${busy[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${busy[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  busy=()
}
trap stop_busy EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cores=$(nproc)
for ((i = 0; i < cores; i++)); do
  (while :; do :; done) &
  busy+=("$!")
done
echo "stress-test: $runs runs of scripts/test.sh with $cores busy loops (one per core); logs in $logs"

passed=0
failed=0
for ((run = 1; run <= runs; run++)); do
  log="$logs/run-$run.log"
  start=$(date +%s)
  if bash scripts/test.sh "$@" >"$log" 2>&1; then
    result=passed
    passed=$((passed + 1))
  else
    result="FAILED (log: $log)"
    failed=$((failed + 1))
  fi
  echo "run $run/$runs: $result in $(($(date +%s) - start)) s"
  if [ "$result" != passed ]; then
    grep -E '^(--- FAIL|FAIL|panic:)' "$log" | sed 's/^/    /' || true
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
