/**
 * Who the cluster an inventory reaches is, from the members themselves: the cluster id in their response headers,
 * the member list (ids, names, peer and client URLs) and each member's version from its status. The inventory's
 * name and URL spellings are not identity: `localhost` and `127.0.0.1` are the same member, a renamed copy of an
 * inventory the same cluster. See src/execute/identity.ts for how a run is pinned to what this reads.
 */
import type { ClusterIdentity, IdentityMember } from '../events/cluster-identity.ts';
import type { Inventory } from '../inventory/types.ts';
import { shortGrpcMessage } from './errors.ts';
import { canonicalPeerURLs, inventoryAddresses } from './addresses.ts';
import { memberList, type EtcdMember } from './membership.ts';
import { EtcdPool } from './pool.ts';
import { memberStatus, type MemberStatus } from './status.ts';

/** Deadline of each identity call: short, because a run start and every mutating step wait for it. */
const IDENTITY_TIMEOUT_MS = 3000;

/**
 * Read the identity of the cluster the inventory reaches. Never throws for unreachable members: when none
 * answers, the identity has no cluster id, its peer URLs are the inventory's, and `errors` say why.
 *
 * @example
 *   const id = await readClusterIdentity(inventory);
 *   console.log(id.clusterId ?? `nothing answers: ${id.errors?.join('; ')}`);
 */
export async function readClusterIdentity(inventory: Inventory, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<ClusterIdentity> {
  const pool = new EtcdPool(inventory, { requestTimeoutMs: Math.min(opts.timeoutMs ?? IDENTITY_TIMEOUT_MS, inventory.requestTimeoutMs ?? IDENTITY_TIMEOUT_MS) });
  const call = opts.signal ? { signal: opts.signal } : {};
  try {
    const errors: string[] = [];
    const perMember = await Promise.all(inventory.members.map(async (m) => {
      const [status, list] = await Promise.allSettled([
        memberStatus(pool, m.clientURL, call),
        memberList(pool, m.clientURL, { ...call, linearizable: false }),
      ]);
      if (status.status === 'rejected' && list.status === 'rejected') errors.push(`${m.name}: ${shortGrpcMessage(status.reason)}`);
      return {
        status: status.status === 'fulfilled' ? status.value : undefined,
        list: list.status === 'fulfilled' ? list.value : undefined,
      };
    }));
    const statuses = perMember.flatMap((p) => (p.status ? [p.status] : []));
    const ids = [...new Set([...statuses.map((s) => s.clusterId), ...perMember.flatMap((p) => (p.list ? [p.list.clusterId] : []))])];
    // Members of two clusters in one inventory: no single identity. The first answer's is the one reported; the
    // comparison with a pinned identity (or the preflight's own check) then refuses.
    const clusterId = ids[0] ?? null;
    if (ids.length > 1) errors.push(`the inventory's members answer with different cluster ids: ${ids.join(', ')}`);
    const list: EtcdMember[] = perMember.find((p) => p.list && p.list.clusterId === clusterId)?.list?.members ?? [];
    const versionOf = (id: string): string | null => statuses.find((s: MemberStatus) => s.memberId === id)?.version ?? null;
    const members: IdentityMember[] = list.map((m) => ({
      id: m.id, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: m.isLearner, version: versionOf(m.id),
    }));
    const peerURLs = await canonicalPeerURLs([...inventoryAddresses(inventory), ...list.flatMap((m) => m.peerURLs)]);
    return { clusterId, members, peerURLs, ...(errors.length ? { errors } : {}) };
  } finally {
    pool.close();
  }
}
