#!/usr/bin/env bash
# Unpack Debian's etcd builds into .tools/etcd-<version>/bin (etcd, etcdctl, and etcdutl where the release has it).
# Nothing is installed system-wide: apt-get download runs against a private sources list, lists and cache in a temp dir,
# naming the suites that carry each version on the mirror the machine's own apt sources already use.
#   scripts/fetch-etcd.sh 3.4.23 3.5.16 3.5.30     (default: all three)
# Already-unpacked versions are kept (cached). Prints nothing on stdout.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.tools"
log() { echo "fetch-etcd: $*" >&2; }

# version -> Debian suite and package version
suite_of() { case "$1" in 3.4.23) echo bookworm ;; 3.5.16) echo trixie ;; 3.5.30) echo sid ;; *) return 1 ;; esac; }
debver_of() { case "$1" in 3.4.23) echo '3.4.23-4*' ;; 3.5.16) echo '3.5.16-*' ;; 3.5.30) echo '3.5.30-*' ;; *) return 1 ;; esac; }

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.4.23 3.5.16 3.5.30)

missing=()
for v in "${versions[@]}"; do
  suite_of "$v" >/dev/null || { log "etcd $v is not one this script can fetch (3.4.23, 3.5.16, 3.5.30)"; exit 2; }
  [ -x "$tools/etcd-$v/bin/etcd" ] && [ -x "$tools/etcd-$v/bin/etcdctl" ] || missing+=("$v")
done
[ ${#missing[@]} -gt 0 ] || exit 0
command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 || {
  log "apt-get/dpkg-deb not available: unpack etcd ${missing[*]} by hand into $tools/etcd-<version>/bin"; exit 1; }

# The mirror the machine already uses (deb822 .sources or a one-line sources.list); Debian's main mirror otherwise.
mirror=$( { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}';
            grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; break}}'; } |
          grep -E '/debian/?$' | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
signed=""; [ -f "$keyring" ] && signed="[signed-by=$keyring] "

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
: > "$work/sources.list"
for v in "${missing[@]}"; do echo "deb ${signed}$mirror $(suite_of "$v") main" >> "$work/sources.list"; done
sort -u -o "$work/sources.list" "$work/sources.list"
opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=/nonexistent
      -o "Dir::State::lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root -qq)
log "apt-get update for $(awk '{print $(NF-1)}' "$work/sources.list" | paste -sd, -) on $mirror"
apt-get "${opts[@]}" update >&2
for v in "${missing[@]}"; do
  pat=$(debver_of "$v")
  exact=$(apt-cache "${opts[@]}" madison etcd-server | awk -F'|' '{gsub(/ /,"",$2); print $2}' | grep -E "^${pat//\*/.*}$" | head -n1)
  [ -n "$exact" ] || { log "no etcd-server $pat in $(suite_of "$v")"; exit 1; }
  log "etcd $v: downloading etcd-server=$exact etcd-client=$exact"
  (cd "$work/debs" && apt-get "${opts[@]}" download "etcd-server=$exact" "etcd-client=$exact" >&2)
  dest="$tools/etcd-$v"
  stage="$work/x-$v"
  mkdir -p "$stage"
  for deb in "$work"/debs/etcd-server_"${exact//:/%3a}"_*.deb "$work"/debs/etcd-client_"${exact//:/%3a}"_*.deb; do
    dpkg-deb -x "$deb" "$stage"
  done
  rm -f "$work"/debs/*.deb
  mkdir -p "$dest.part/bin"
  for b in etcd etcdctl etcdutl; do
    [ -x "$stage/usr/bin/$b" ] && cp "$stage/usr/bin/$b" "$dest.part/bin/$b"
  done
  got=$("$dest.part/bin/etcd" --version 2>&1 | sed -n 's/^etcd Version: //p')
  [ "$got" = "$v" ] || { log "the etcd-server package $exact unpacked an etcd reporting '$got', not $v"; exit 1; }
  [ -d "$dest" ] && mv "$dest" "$dest.old-$(date +%s)"
  mv "$dest.part" "$dest"
  log "etcd $v in $dest/bin ($(ls "$dest/bin" | paste -sd' ' -))"
done
