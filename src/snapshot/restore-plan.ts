/**
 * Before anything is touched: which etcd version the cluster to restore runs, which tool restores each member on
 * its own host, and whether revisions will move forward. A restore that would take revisions BACK (no tool on a
 * member's host has --bump-revision) is refused here, while the cluster is still as the operator left it, unless
 * the operator accepted it (allowRevisionRewind): then the plan says the API servers are fenced and restarted.
 *
 * The cluster's version comes from the chosen snapshot's manifest (the version its members reported when it was
 * saved), else from the etcd binaries the members are configured to run (the oldest: a cluster mid-upgrade runs
 * at its oldest member's version), never from whichever etcd PATH finds on the machine running runbook.
 */
import { hostFor } from '../hosts/index.ts';
import type { Inventory } from '../inventory/types.ts';
import { oldestOf } from '../etcd/versions.ts';
import { binPath, chooseSnapshotTool, etcdBinaryVersion, memberEtcdDir, toolDirs } from './etcd-tools.ts';

export interface MemberRestoreTool {
  member: string;
  host: string;
  /** "etcdutl 3.5.30 (/path/etcdutl)". */
  tool: string;
  /** Moves revisions forward (--bump-revision --mark-compacted). */
  bump: boolean;
}

export interface RestorePlan {
  etcdVersion: string | null;
  versionSource: 'snapshot manifest' | "members' etcd binaries" | 'unknown';
  /** forward: every member is restored with --bump-revision; rewind: accepted by the operator (allowRevisionRewind). */
  revisions: 'forward' | 'rewind';
  tools: MemberRestoreTool[];
  /** What happens because of it, for the plan and the log. */
  consequence: string;
}

/** The version the members' configured etcd binaries report (the oldest), or undefined when none can be run. */
export async function membersEtcdVersion(inventory: Inventory, signal?: AbortSignal): Promise<string | undefined> {
  const versions = await Promise.all(
    inventory.members.map(async (m) => {
      const dir = memberEtcdDir(m) ?? inventory.etcdBinDir;
      if (!dir) return undefined; // a bare `etcd` would be PATH's, not necessarily the member's
      return (await etcdBinaryVersion(hostFor(m), binPath(dir, 'etcd'), signal).catch(() => undefined))?.text;
    }),
  );
  return oldestOf(versions)?.text;
}

export async function planRestore(
  inventory: Inventory,
  o: { manifestVersion?: string | undefined; allowRevisionRewind?: boolean; signal?: AbortSignal },
): Promise<RestorePlan> {
  let etcdVersion = o.manifestVersion;
  let versionSource: RestorePlan['versionSource'] = etcdVersion ? 'snapshot manifest' : 'unknown';
  if (!etcdVersion) {
    etcdVersion = await membersEtcdVersion(inventory, o.signal);
    if (etcdVersion) versionSource = "members' etcd binaries";
  }
  // Every member's host at once (a refusal is the first member's in inventory order, as one after another gave).
  const tools: MemberRestoreTool[] = await Promise.all(
    inventory.members.map(async (m) => {
      const host = hostFor(m);
      const c = await chooseSnapshotTool(host, toolDirs(m, inventory), {
        purpose: 'restore',
        ...(etcdVersion ? { clusterVersion: etcdVersion } : {}),
        ...(o.allowRevisionRewind ? { allowRevisionRewind: true } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      });
      return { member: m.name, host: host.label, tool: `${c.tool.kind} ${c.tool.toolVersion ?? '?'} (${c.tool.path})`, bump: c.bump };
    }),
  );
  const rewind = tools.some((t) => !t.bump);
  const k8s = inventory.kubernetes?.apiServers?.length;
  const consequence = !rewind
    ? 'revisions move forward (--bump-revision --mark-compacted): watchers see them grow and old ones read as compacted'
    : `revisions go BACK to the snapshot's (accepted: allowRevisionRewind)${
        k8s ? ': the API servers stay fenced until the restored cluster is healthy, then restart with fresh watch caches' : ': restart every client that watches etcd after the restore (no kubernetes.apiServers in the inventory to fence)'
      }`;
  return { etcdVersion: etcdVersion ?? null, versionSource, revisions: rewind ? 'rewind' : 'forward', tools, consequence };
}
