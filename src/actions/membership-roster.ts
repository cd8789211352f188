/**
 * The cluster's members as etcd lists them, joined with the inventory and with what each member answers. Unlike
 * clusterView (which is keyed by inventory entries), a roster is keyed by etcd member: it still works when the
 * inventory names a member that is gone, or lists an old address for a replacement that runs somewhere new.
 */
import type { CallOpts } from '../etcd/call.ts';
import { shortGrpcMessage } from '../etcd/errors.ts';
import { hexIdToDecimal, looksLikeHexId, normalizeURL, sameURL } from '../etcd/ids.ts';
import { memberList, type EtcdMember } from '../etcd/membership.ts';
import type { EtcdPool } from '../etcd/pool.ts';
import { memberStatus, type MemberStatus } from '../etcd/status.ts';
import { clusterView, matchMember, unreadable } from '../etcd/view.ts';
import type { MemberSpec } from '../inventory/types.ts';
import { StepError } from '../util/errors.ts';

export interface RosterEntry {
  member: EtcdMember;
  /** The inventory entry of this member, when there is one. */
  spec?: MemberSpec;
  /** Where it was asked (its inventory client URL, else the first client URL etcd lists). */
  endpoint?: string;
  status?: MemberStatus;
  /** Why it did not answer. */
  error?: string;
}

export interface Roster {
  entries: RosterEntry[];
  /** Inventory members etcd does not list (removed, or never added). */
  missing: MemberSpec[];
  /** The list came from a quorum read through the leader (false: one member's own view, e.g. without quorum). */
  linearizable: boolean;
  /** Hex id of the leader every answering voter agrees on, when it answers itself. */
  leaderId: string | null;
  leader?: RosterEntry;
  /** Failures of the list calls, for messages. */
  errors: string[];
}

/** How a roster entry is called in messages: inventory name, else etcd's name, else its id. */
export function label(e: RosterEntry): string {
  return e.spec?.name ?? (e.member.name || e.member.id);
}

export function isVoter(e: RosterEntry): boolean {
  return !e.member.isLearner;
}

export function answers(e: RosterEntry): e is RosterEntry & { status: MemberStatus } {
  return e.status !== undefined;
}

/**
 * Read the roster: every inventory member's status (in parallel), the member list (linearizable; when no quorum
 * answers, the serializable list of an answering member), and the status of members the inventory does not name.
 */
export async function readRoster(pool: EtcdPool, opts: CallOpts = {}): Promise<Roster> {
  const view = await clusterView(pool, opts);
  // A member refused for want of credentials or trust is not a dead member to replace: the inventory is to fix.
  const locked = unreadable(view);
  if (locked.length > 0) {
    throw new StepError('invalid', `cannot read ${locked.map((p) => `${p.name}: ${p.error}`).join('; ')}: that does not make it a dead member`, {
      ...(locked.length === 1 ? { member: locked[0]!.name } : {}),
      hint: locked[0]!.hint ?? 'check the auth and TLS settings of the inventory',
    });
  }
  const errors = [...view.errors];
  let list = view.memberList;
  let linearizable = list !== null;
  if (!list) {
    for (const p of view.members) {
      if (!p.ok) continue;
      try {
        list = (await memberList(pool, p.endpoint, { ...opts, linearizable: false })).members;
        linearizable = false;
        break;
      } catch (err) {
        errors.push(shortGrpcMessage(err));
      }
    }
  }
  if (!list) return { entries: [], missing: [...pool.inventory.members], linearizable: false, leaderId: null, errors };
  const members = list;
  const claimed = new Set<string>();
  const entries: RosterEntry[] = members.map((member) => ({ member }));
  for (const p of view.members) {
    const m = matchMember(p.spec, members, p.ok ? p.status.memberId : undefined);
    const e = m ? entries.find((x) => x.member.id === m.id) : undefined;
    if (!e || e.spec) continue;
    claimed.add(p.spec.name);
    e.spec = p.spec;
    e.endpoint = p.endpoint;
    if (p.ok && p.status.memberId === e.member.id) e.status = p.status;
    else e.error = p.ok ? `answers as member ${p.status.memberId}` : p.error;
  }
  // A member the inventory does not name, or names at an old client URL: ask it where etcd says it serves.
  await Promise.all(
    entries.map(async (e) => {
      if (e.status) return;
      const url = e.member.clientURLs.find((u) => !e.endpoint || !sameURL(u, e.endpoint));
      if (!url) {
        if (e.member.clientURLs.length === 0) e.error ??= 'not started yet (no client URL)';
        return;
      }
      try {
        const s = await memberStatus(pool, url, opts);
        if (s.memberId === e.member.id) {
          e.status = s;
          e.endpoint = url;
          delete e.error;
        }
      } catch (err) {
        e.error ??= shortGrpcMessage(err);
      }
    }),
  );
  const leaderIds = new Set(entries.flatMap((e) => (e.status && isVoter(e) && e.status.leaderId !== '0' ? [e.status.leaderId] : [])));
  const only = leaderIds.size === 1 ? [...leaderIds][0]! : null;
  const leader = only ? entries.find((e) => e.member.id === only && e.status) : undefined;
  return {
    entries,
    missing: pool.inventory.members.filter((s) => !claimed.has(s.name)),
    linearizable,
    leaderId: leader ? only : null,
    ...(leader ? { leader } : {}),
    errors,
  };
}

/** Decimal member id as `etcdctl -w json` prints it (17–20 digits), else undefined. */
function decimalToHex(text: string): string | undefined {
  if (!/^\d{17,20}$/.test(text)) return undefined;
  const n = BigInt(text);
  return n <= 0xffff_ffff_ffff_ffffn ? n.toString(16) : undefined;
}

/** A hex id as etcdctl prints it (unpadded, space-padded, 0x) → unpadded lowercase, or undefined. */
function hexId(text: string): string | undefined {
  try {
    return BigInt(hexIdToDecimal(text)).toString(16);
  } catch {
    return undefined;
  }
}

export type Found = { kind: 'member'; entry: RosterEntry } | { kind: 'missing'; spec: MemberSpec };

/**
 * Find a member by what a person would type: inventory name, etcd name, hex id (any of etcdctl's spellings), the
 * decimal id of `-w json`, or a peer or client URL. Inventory names win; an inventory member etcd does not list
 * is returned as `missing` (already removed).
 */
export function findInRoster(roster: Roster, ref: string): Found | undefined {
  const r = ref.trim();
  const bySpec = (spec: MemberSpec): Found => {
    const e = roster.entries.find((x) => x.spec === spec);
    return e ? { kind: 'member', entry: e } : { kind: 'missing', spec };
  };
  const inv = [...roster.entries.flatMap((e) => (e.spec ? [e.spec] : [])), ...roster.missing];
  const named = inv.find((s) => s.name === r);
  if (named) return bySpec(named);
  if (/^https?:\/\//i.test(r)) {
    const u = normalizeURL(r);
    const e = roster.entries.find((x) => x.member.peerURLs.some((p) => normalizeURL(p) === u)) ?? roster.entries.find((x) => x.member.clientURLs.some((c) => normalizeURL(c) === u));
    if (e) return { kind: 'member', entry: e };
    const s = inv.find((x) => normalizeURL(x.peerURL) === u || normalizeURL(x.clientURL) === u);
    return s ? bySpec(s) : undefined;
  }
  const byEtcdName = roster.entries.find((x) => x.member.name !== '' && x.member.name === r);
  if (byEtcdName) return { kind: 'member', entry: byEtcdName };
  const id = decimalToHex(r) ?? (looksLikeHexId(r) || /^[0-9a-f]{1,16}$/i.test(r.trim()) ? hexId(r) : undefined);
  if (id) {
    const e = roster.entries.find((x) => x.member.id === id);
    if (e) return { kind: 'member', entry: e };
  }
  return undefined;
}

/** "m1 (8e9e05c52164694d, http://127.0.0.1:2380)", or "8e9e… (not started, http://…)" for messages. */
export function describeEntry(e: RosterEntry): string {
  const name = label(e);
  const what = name === e.member.id ? (e.member.name === '' ? 'not started' : undefined) : e.member.id;
  const parts = [what, e.member.peerURLs[0]].filter((x): x is string => x !== undefined);
  return parts.length ? `${name} (${parts.join(', ')})` : name;
}
