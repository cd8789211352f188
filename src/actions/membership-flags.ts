/**
 * The etcd flags of a replacement member (pure): `--initial-cluster` from the current member list (the new
 * learner included, under the replacement's name), `--initial-cluster-state existing`, and the URL flags
 * rewritten when the replacement lives at a new address.
 */
import type { EtcdMember } from '../etcd/membership.ts';
import { sameURL } from '../etcd/ids.ts';
import { StepError } from '../util/errors.ts';

/** `name=peerURL,...` for every member etcd lists (every peer URL of each), the new member under `newName`. */
export function initialCluster(members: EtcdMember[], newId: string, newName: string): string {
  const parts: string[] = [];
  for (const m of members) {
    const name = m.id === newId ? newName : m.name;
    if (name === '') {
      throw new StepError('precondition', `member ${m.id} (${m.peerURLs.join(', ')}) was added but never started: --initial-cluster needs its name`, {
        hint: 'start that member, or remove it (etcdctl member remove ID), then resume',
      });
    }
    for (const u of m.peerURLs) parts.push(`${name}=${u}`);
  }
  return parts.join(',');
}

const WILDCARD = new Set(['0.0.0.0', '[::]', '::']);

/**
 * A `--listen-*-urls` value with the old address replaced by the new one: an entry equal to the old URL becomes
 * the new URL; a wildcard entry (0.0.0.0 / [::]) on the old port moves to the new port. When no entry covers the
 * new URL afterwards, it is appended (etcd must listen where it advertises).
 */
export function rewriteListen(value: string, oldURL: string, newURL: string): string;
export function rewriteListen(value: string | undefined, oldURL: string, newURL: string): string | undefined;
export function rewriteListen(value: string | undefined, oldURL: string, newURL: string): string | undefined {
  // Same address, flag not given: etcd's default stays in force.
  if (sameURL(oldURL, newURL)) return value;
  const entries = (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const oldPort = portOf(oldURL);
  const newPort = portOf(newURL);
  const out = entries.map((e) => {
    if (sameURL(e, oldURL)) return newURL;
    try {
      const u = new URL(e);
      if (WILDCARD.has(u.hostname) && portOf(e) === oldPort && newPort !== undefined) {
        u.port = newPort;
        return u.toString().replace(/\/$/, '');
      }
    } catch {
      // not a URL: leave it to etcd to complain
    }
    return e;
  });
  const covers = out.some((e) => sameURL(e, newURL) || (isWildcard(e) && portOf(e) === newPort));
  if (!covers) out.push(newURL);
  return [...new Set(out)].join(',');
}

function isWildcard(url: string): boolean {
  try {
    return WILDCARD.has(new URL(url).hostname);
  } catch {
    return false;
  }
}

function portOf(url: string): string | undefined {
  try {
    const u = new URL(url);
    return u.port || (u.protocol === 'https:' ? '443' : u.protocol === 'http:' ? '80' : undefined);
  } catch {
    return undefined;
  }
}

export interface ReplacementAddress {
  name: string;
  oldPeerURL: string;
  oldClientURL: string;
  peerURL: string;
  clientURL: string;
}

/**
 * The flags to set on the replacement (flag name without dashes → value), given the flags in effect now.
 * `dataDir` is included only when it differs from the one in effect.
 */
export function replacementFlags(
  addr: ReplacementAddress,
  current: { listenPeer?: string; listenClient?: string; dataDir?: string },
  initialClusterValue: string,
  dataDir: string,
): [string, string][] {
  const flags: [string, string][] = [
    ['name', addr.name],
    ['initial-cluster', initialClusterValue],
    ['initial-cluster-state', 'existing'],
    ['initial-advertise-peer-urls', addr.peerURL],
    ['advertise-client-urls', addr.clientURL],
  ];
  const listenPeer = rewriteListen(current.listenPeer, addr.oldPeerURL, addr.peerURL);
  const listenClient = rewriteListen(current.listenClient, addr.oldClientURL, addr.clientURL);
  if (listenPeer !== undefined) flags.push(['listen-peer-urls', listenPeer]);
  if (listenClient !== undefined) flags.push(['listen-client-urls', listenClient]);
  if (current.dataDir === undefined || current.dataDir.replace(/\/+$/, '') !== dataDir.replace(/\/+$/, '')) flags.push(['data-dir', dataDir]);
  return flags;
}

/** `--flag=value ...` for a human to type (values are shown as they are; no secrets are among these flags). */
export function flagsForHumans(flags: [string, string][]): string {
  return flags.map(([f, v]) => `--${f}=${v}`).join(' ');
}
