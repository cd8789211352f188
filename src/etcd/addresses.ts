/**
 * Member addresses as keys: URLs normalized and host names resolved, so `localhost` and `127.0.0.1` are the same
 * member (the run lock is keyed by them). No etcd client here: the stores use it without loading etcd3.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Inventory } from '../inventory/types.ts';
import { normalizeURL } from './ids.ts';

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
