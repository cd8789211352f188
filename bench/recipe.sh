#!/usr/bin/env bash
# The hand-typed NOSPACE recipe operators paste today (etcd's maintenance guide), as a plain script with no
# waits and no checks: current revision, compact (physical), defragment each endpoint (one etcdctl per member, the
# loop operators type, without its `sleep`), disarm, test put. TLS files come from ETCDCTL_CACERT/CERT/KEY.
#   bench/recipe.sh http://127.0.0.1:2379,http://127.0.0.1:22379,http://127.0.0.1:32379
# Prints one "<step> <epoch seconds>" line per finished command on stderr (bash's $EPOCHREALTIME: no process
# spawned for the clock). The command timeout is raised: etcdctl's default 5 s is too short for a physical
# compaction or a defrag of a multi-GB backend, and an operator would raise it too.
set -euo pipefail
endpoints=$1
first=${endpoints%%,*}
ctl() { etcdctl --command-timeout=30m "$@"; }
echo "start $EPOCHREALTIME" >&2
rev=$(ctl --endpoints="$first" endpoint status --write-out=json | grep -Eo '"revision":[0-9]+' | grep -Eo '[0-9]+')
echo "revision $EPOCHREALTIME" >&2
ctl --endpoints="$first" compaction --physical "$rev" >/dev/null
echo "compact $EPOCHREALTIME" >&2
for ep in ${endpoints//,/ }; do ctl --endpoints="$ep" defrag >/dev/null; done
echo "defrag $EPOCHREALTIME" >&2
ctl --endpoints="$first" alarm disarm >/dev/null
echo "disarm $EPOCHREALTIME" >&2
ctl --endpoints="$first" put bench/canary ok >/dev/null
echo "put $EPOCHREALTIME" >&2
