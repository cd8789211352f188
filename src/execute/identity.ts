/**
 * The identity a run is pinned to (its types: src/events/cluster-identity.ts): which cluster (its id, its members' ids, names, peer URLs and versions)
 * the run started on. The engine journals it (`cluster.identity`) and compares the live cluster with it before a
 * resume, a takeover and every mutating step, so a run can never act on another cluster than its own — whatever
 * inventory it is resumed with. Pure: reading the live cluster is the registry's job (src/etcd/identity.ts).
 */
import type { ClusterIdentity, IdentityReason } from '../events/cluster-identity.ts';
import type { JournalRecord } from '../events/types.ts';
import { UserError } from '../util/errors.ts';

/** The identity the run is pinned to now: the last `cluster.identity` record (undefined for a run without any). */
export function pinnedIdentity(records: readonly JournalRecord[]): (ClusterIdentity & { reason: IdentityReason; previousClusterId?: string | null }) | undefined {
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i]!;
    if (r.type === 'cluster.identity') {
      return { ...r.identity, reason: r.reason, ...(r.previousClusterId !== undefined ? { previousClusterId: r.previousClusterId } : {}) };
    }
  }
  return undefined;
}

export type IdentityVerdict =
  | { same: true; /** The live cluster tells more than the pin (first answer, new ids after a restore): journal it. */ repin?: IdentityReason }
  | { same: false; why: string };

function describe(id: ClusterIdentity): string {
  return id.clusterId ? `cluster id ${id.clusterId}` : `no cluster id (no member answered; peer URLs ${id.peerURLs.join(', ') || 'none'})`;
}

/**
 * Is `live` the cluster a run pinned as `pinned`? Cluster ids decide when both are known. When either is unknown
 * (nothing answered, or a restore's new id is not read yet) the peer URLs decide: two clusters never share one
 * (each is a listening address), and a member replacement keeps the others.
 */
export function compareIdentity(pinned: ClusterIdentity & { reason?: IdentityReason }, live: ClusterIdentity): IdentityVerdict {
  if (pinned.clusterId && live.clusterId) {
    if (pinned.clusterId === live.clusterId) return { same: true };
    return { same: false, why: `the run is pinned to cluster id ${pinned.clusterId}, but the cluster it would act on answers as cluster id ${live.clusterId}` };
  }
  const shared = live.peerURLs.filter((u) => pinned.peerURLs.includes(u));
  if (shared.length === 0) {
    return {
      same: false,
      why: `the run is pinned to ${describe(pinned)} with peer URLs ${pinned.peerURLs.join(', ') || 'none'}, but the cluster it would act on has ${describe(live)} and peer URLs ${live.peerURLs.join(', ') || 'none'}: no member in common`,
    };
  }
  if (!pinned.clusterId && live.clusterId) return { same: true, repin: pinned.reason === 'restore' ? 'after-restore' : 'first-answer' };
  return { same: true };
}

/** The refusal of a resume (or takeover) on another cluster than the run's: names both identities and what to do. */
export function identityMismatchError(runId: string, why: string, inventorySource: string): UserError {
  return new UserError(
    `run ${runId} belongs to another cluster than the one inventory ${inventorySource} reaches: ${why}.\n` +
      '  Nothing was changed. Resume with the inventory of the cluster the run started on (or without --inventory to use the one stored with the run).',
  );
}
