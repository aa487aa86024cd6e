#!/usr/bin/env bash
# Builds once, then runs every benchmark of bench/ one after the other and prints each one's
# JSON line on stdout (progress goes to stderr). Sizes are smaller than the benchmarks'
# defaults so the whole run stays under ~10 minutes on a 2-core machine, plus the replica soak
# at its full length (10 minutes of kills, ~12 minutes in all; always on PostgreSQL).
#
#   bash bench/run-all.sh [--db postgres] > results.jsonl
#
# Extra arguments (e.g. --db postgres) are passed to every benchmark. A benchmark that fails
# is reported on stderr and the others still run; the exit code is 1 if any failed.
set -u
cd "$(dirname "$0")/.."
npm run build >&2 || exit 1

failed=0
run() {
  local name=$1
  shift
  echo "[run-all] $name $*" >&2
  local started=$SECONDS
  if ! node "dist/bench/$name.js" "$@"; then
    echo "[run-all] $name FAILED" >&2
    failed=1
  fi
  echo "[run-all] $name took $((SECONDS - started)) s" >&2
}

run v1Throughput --count 1000 "$@"
run outputIngest --mb 512 "$@"
run dispatchLatency --samples 30 "$@"
run firstOutput --samples 15 "$@"
run runnerThroughput --mb 200 --small-mb 50 "$@"
run schedulePrecision "$@"
run cliStartup --samples 15 "$@"
run executionThroughput --count 2000 "$@"
run fleet --runners 2000 --idle 10 --steady 10 "$@"
run fleet --protocol v1 --runners 500 --idle 10 "$@"
run soak --duration 600 --kill-every 30 "$@"
exit $failed
