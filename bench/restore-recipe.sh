#!/usr/bin/env bash
# The hand-typed restore recipe (etcd's disaster-recovery guide, what operators paste after every member of a
# cluster died with damaged data), as a plain script with no checks: move each data dir aside, restore each member
# from the snapshot with its own name and peer URL, a shared --initial-cluster and a new token (etcdutl with
# --bump-revision/--mark-compacted on etcd >= 3.5, as the Kubernetes docs say; etcdctl on 3.4), start every member,
# poll `endpoint health` every 0.1 s until all answer, then a test put. TLS files come from ETCDCTL_CACERT/CERT/KEY.
#   bench/restore-recipe.sh SNAPSHOT TOKEN INITIAL_CLUSTER ENDPOINTS MEMBER...
# where each MEMBER is name=peerURL=dataDir=argvFile=pidFile=logFile (argvFile: the member's etcd command line,
# NUL-separated, the way the bench's process driver starts it; on a real host this line is `systemctl start etcd`).
# Prints one "<step> <epoch seconds>" line per finished phase on stderr (bash's $EPOCHREALTIME).
set -euo pipefail
# Loops give up after 10 minutes (a member that cannot start would otherwise hang the bench).
give_up=$((EPOCHSECONDS + 600))
waited() { [ "$EPOCHSECONDS" -lt "$give_up" ] || { echo "gave up waiting" >&2; exit 1; }; }
snapshot=$1 token=$2 initial_cluster=$3 endpoints=$4
shift 4
echo "start $EPOCHREALTIME" >&2
if command -v etcdutl >/dev/null 2>&1; then
  restore() { etcdutl snapshot restore "$snapshot" --bump-revision 1000000000 --mark-compacted "$@" >/dev/null 2>&1; }
else
  restore() { ETCDCTL_API=3 etcdctl snapshot restore "$snapshot" "$@" >/dev/null 2>&1; }
fi
for m in "$@"; do
  IFS== read -r name peer dir _ _ _ <<<"$m"
  mv "$dir" "$dir.broken-$EPOCHSECONDS"
  restore --name "$name" --initial-advertise-peer-urls "$peer" --initial-cluster "$initial_cluster" \
    --initial-cluster-token "$token" --data-dir "$dir"
done
echo "restore $EPOCHREALTIME" >&2
for m in "$@"; do
  IFS== read -r _ _ _ argv pid log <<<"$m"
  mapfile -d '' cmd <"$argv"
  setsid "${cmd[@]}" </dev/null >>"$log" 2>&1 &
  echo $! >"$pid"
done
echo "started $EPOCHREALTIME" >&2
until etcdctl --endpoints="$endpoints" --command-timeout=1s endpoint health >/dev/null 2>&1; do waited; sleep 0.1; done
echo "healthy $EPOCHREALTIME" >&2
etcdctl --endpoints="${endpoints%%,*}" put bench/canary ok >/dev/null
echo "put $EPOCHREALTIME" >&2
