#!/usr/bin/env bash
# The hand-typed member-replacement recipe (etcd's runtime-reconfiguration guide): find the dead member's id,
# remove it, move its data dir aside, add it back as a learner, start it with --initial-cluster-state existing and
# the --initial-cluster `member add` printed, promote it as soon as etcd allows (retried every 0.1 s: a learner
# is promotable once in sync), poll `endpoint health` until every member answers, then a test put. `member add`
# is retried every 0.2 s too: right after a remove etcd answers "unhealthy cluster" for a few seconds. No checks.
#   bench/replace-recipe.sh NAME PEER_URL DATA_DIR ARGV_FILE PID_FILE LOG_FILE ENDPOINTS
# ARGV_FILE: the member's etcd command line, NUL-separated (`systemctl start etcd` after editing its flags on a
# real host); the new flags are appended (etcd's flag parsing: the last occurrence wins).
# Prints one "<step> <epoch seconds>" line per finished phase on stderr (bash's $EPOCHREALTIME).
set -euo pipefail
# Loops give up after 10 minutes (a member that cannot start would otherwise hang the bench).
give_up=$((EPOCHSECONDS + 600))
waited() { [ "$EPOCHSECONDS" -lt "$give_up" ] || { echo "gave up waiting" >&2; exit 1; }; }
name=$1 peer=$2 dir=$3 argv=$4 pid=$5 log=$6 endpoints=$7
live=${endpoints%%,*}
ctl() { etcdctl --endpoints="$live" "$@"; }
echo "start $EPOCHREALTIME" >&2
id=$(ctl member list | awk -F', ' -v n="$name" '$3 == n { print $1 }')
ctl member remove "$id" >/dev/null
echo "remove $EPOCHREALTIME" >&2
mv "$dir" "$dir.replaced-$EPOCHSECONDS"
until out=$(ctl member add "$name" --peer-urls="$peer" --learner 2>&1); do waited; sleep 0.2; done
new_id=$(grep -Eo 'Member +[0-9a-f]+ added' <<<"$out" | awk '{ print $2 }')
ic=$(grep -Eo 'ETCD_INITIAL_CLUSTER="[^"]*"' <<<"$out" | cut -d'"' -f2)
echo "add $EPOCHREALTIME" >&2
mapfile -d '' cmd <"$argv"
setsid "${cmd[@]}" --initial-cluster "$ic" --initial-cluster-state existing </dev/null >>"$log" 2>&1 &
echo $! >"$pid"
echo "started $EPOCHREALTIME" >&2
until ctl member promote "$new_id" >/dev/null 2>&1; do waited; sleep 0.1; done
echo "promote $EPOCHREALTIME" >&2
until etcdctl --endpoints="$endpoints" --command-timeout=1s endpoint health >/dev/null 2>&1; do waited; sleep 0.1; done
echo "healthy $EPOCHREALTIME" >&2
ctl put bench/canary ok >/dev/null
echo "put $EPOCHREALTIME" >&2
