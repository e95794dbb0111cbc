#!/usr/bin/env bash
# The whole test suite: installs the real programs the tests run (as root), then runs every
# Go test, fuzz seed corpus included, with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-deps.sh
go vet ./...
go test -race -count=1 -timeout 20m ./... "$@"
