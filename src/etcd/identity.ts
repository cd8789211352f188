/**
 * Who the cluster an inventory reaches is, from the members themselves: the cluster id in their response headers,
 * the member list (ids, names, peer and client URLs) and each member's version from its status. The inventory's
 * name and URL spellings are not identity: `localhost` and `127.0.0.1` are the same member, a renamed copy of an
 * inventory the same cluster. See src/execute/identity.ts for how a run is pinned to what this reads.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { ClusterIdentity, IdentityMember } from '../events/cluster-identity.ts';
import type { Inventory } from '../inventory/types.ts';
import { shortGrpcMessage } from './errors.ts';
import { normalizeURL } from './ids.ts';
import { memberList, type EtcdMember } from './membership.ts';
import { EtcdPool } from './pool.ts';
import { memberStatus, type MemberStatus } from './status.ts';

/** Deadline of each identity call: short, because a run start and every mutating step wait for it. */
const IDENTITY_TIMEOUT_MS = 3000;

const resolved = new Map<string, Promise<string>>();

/** A host name as the address it resolves to (IPv4 first), so `localhost` and `127.0.0.1` key the same lock. */
async function resolveHost(host: string): Promise<string> {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (isIP(bare)) return bare.includes(':') ? `[${bare}]` : bare;
  let p = resolved.get(bare);
  if (!p) {
    p = lookup(bare, { family: 4 })
      .catch(() => lookup(bare))
      .then((a) => (a.family === 6 ? `[${a.address}]` : a.address))
      .catch(() => bare); // unresolvable: its name is the best key there is
    resolved.set(bare, p);
  }
  return p;
}

/** normalizeURL (scheme, lowercase host, explicit port) with the host resolved to its address. */
export async function canonicalURL(url: string): Promise<string> {
  const n = normalizeURL(url);
  try {
    const u = new URL(n);
    return `${u.protocol}//${await resolveHost(u.hostname)}${u.port ? `:${u.port}` : ''}`;
  } catch {
    return n;
  }
}

/** The sorted canonical peer URLs of a set of URL lists. */
export async function canonicalPeerURLs(urls: readonly string[]): Promise<string[]> {
  return [...new Set(await Promise.all(urls.map(canonicalURL)))].sort();
}

/** The inventory's peer URLs (an `--endpoints` target has none: its client URLs stand in). */
export function inventoryAddresses(inventory: Pick<Inventory, 'members'>): string[] {
  return inventory.members.map((m) => m.peerURL || m.clientURL).filter(Boolean);
}

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
