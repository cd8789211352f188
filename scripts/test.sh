#!/usr/bin/env bash
# Run the test suite on any machine: bootstrap (Node 24, etcd 3.4.23/3.5.16/3.5.30 under .tools/, kubectl, sshd,
# npm deps), then vitest.
#   scripts/test.sh                 the matrix: the whole suite on etcd 3.5.30, the integration suite on 3.4.23 and 3.5.16
#   scripts/test.sh ARGS…           one vitest run on ETCD_VERSION (default 3.5.30) with ARGS, e.g. test/unit or a file
#   ETCD_VERSION=3.4.23 scripts/test.sh test/integration/nospace-recovery.test.ts
# Every member a test starts runs the chosen version by absolute path (ETCD_BIN_DIR), and the harness fails a test
# whose member reports another version.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

leg() { # leg VERSION [vitest args…]
  local v=$1; shift
  echo "==== etcd $v: vitest run $*"
  local env_lines
  env_lines=$(env -u ETCD_BIN_DIR ETCD_VERSION="$v" bash scripts/bootstrap.sh --print-env)
  # A JSON report per leg, so the end of the log can say which tests failed (scripts/test-summary.mjs).
  local report=".test-results/etcd-$v.json"
  mkdir -p .test-results; rm -f "$report"
  # etcd reads ETCD_<FLAG> variables as flags: ETCD_VERSION must not reach the members (etcd 3.4 refuses to start).
  ( eval "$env_lines"; unset ETCD_VERSION
    npm test -- --reporter=default --reporter=json --outputFile.json="$report" "$@" )
}

if [ $# -gt 0 ] || [ -n "${ETCD_BIN_DIR:-}" ]; then
  if [ -n "${ETCD_BIN_DIR:-}" ]; then
    env_lines=$(bash scripts/bootstrap.sh --print-env); eval "$env_lines"; unset ETCD_VERSION; npm test -- "$@"
  else
    leg "${ETCD_VERSION:-3.5.30}" "$@"
  fi
  exit 0
fi

start=$(date +%s)
failed=()
leg 3.5.30 || failed+=("3.5.30 (whole suite)")
leg 3.4.23 test/integration || failed+=("3.4.23 (integration)")
leg 3.5.16 test/integration || failed+=("3.5.16 (integration)")
echo "==== matrix done in $(( $(date +%s) - start )) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "==== failed tests"
  ( eval "$(bash scripts/bootstrap.sh --print-env)"; node scripts/test-summary.mjs .test-results/etcd-*.json ) || true
  printf 'failed legs: %s\n' "${failed[*]}"
  exit 1
fi
echo "all legs passed: 3.5.30 (whole suite), 3.4.23 and 3.5.16 (integration)"
