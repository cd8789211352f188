#!/usr/bin/env bash
# Run the test suite on any machine: bootstrap (Node 24, etcd, kubectl, sshd, npm deps) then vitest.
# Extra arguments go to vitest, e.g. scripts/test.sh test/unit
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
eval "$(bash scripts/bootstrap.sh --print-env)"
npm test -- "$@"
