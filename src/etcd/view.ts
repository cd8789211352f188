/**
 * The whole cluster at a glance: the status of every inventory member (asked in parallel; an unreachable member
 * is an entry with its error, not a failure), the member list, the alarms, the leader and the cluster id.
 */
import type { MemberSpec } from '../inventory/types.ts';
import { StepError, type FailureKind } from '../util/errors.ts';
import type { CallOpts } from './call.ts';
import { classify, errorClass, shortGrpcMessage, type ErrorClass } from './errors.ts';
import { looksLikeHexId, normalizeURL, sameURL } from './ids.ts';
import { alarmsFromStatusErrors, type Alarm } from './maintenance.ts';
import { memberList, type EtcdMember } from './membership.ts';
import type { EtcdPool } from './pool.ts';
import { memberStatus, type MemberStatus } from './status.ts';

interface ProbeBase {
  name: string;
  endpoint: string;
  spec: MemberSpec;
  /** The etcd member this inventory entry is (by id from its status, else by peer URL, client URL or name). */
  member?: EtcdMember;
}
export type MemberProbe =
  | (ProbeBase & { ok: true; status: MemberStatus })
  /**
   * `error` is the reason without the member's name (messages add it); `hint` what to check; `errorClass` what it
   * means: only `unreachable` says the member may be down, `auth`/`tls` say the tool could not read it.
   */
  | (ProbeBase & { ok: false; error: string; errorKind: FailureKind; errorClass: ErrorClass; hint?: string });

export interface ClusterView {
  /** One entry per inventory member, in inventory order. */
  members: MemberProbe[];
  /** As etcd lists it; null when no member could answer. */
  memberList: EtcdMember[] | null;
  /** Members etcd lists that the inventory does not name. */
  unknownMembers: EtcdMember[];
  /** From the status of the leader (else another answering member); null when no member answers. */
  alarms: Alarm[] | null;
  /** Hex id of the leader every answering member agrees on; null when none is known or they disagree. */
  leaderId: string | null;
  /** Every distinct non-zero leader id reported (more than one = an election in progress or a split). */
  leaderIds: string[];
  /** The leader's probe, when it is an inventory member. */
  leader?: MemberProbe & { ok: true };
  clusterIds: string[];
  clusterId: string | null;
  /** The highest store revision reported. */
  revision: number;
  /** Failures of the member list call, one per member tried. */
  errors: string[];
}

/** Match inventory members to etcd members: by the id their status reported, else by peer URL, client URL, name. */
export function matchMember(spec: MemberSpec, list: EtcdMember[], statusId?: string): EtcdMember | undefined {
  return (
    (statusId ? list.find((m) => m.id === statusId) : undefined) ??
    list.find((m) => m.peerURLs.some((u) => sameURL(u, spec.peerURL))) ??
    list.find((m) => m.clientURLs.some((u) => sameURL(u, spec.clientURL))) ??
    list.find((m) => m.name !== '' && m.name === spec.name)
  );
}

/** Ask every inventory member at once. Never throws for an unreachable member. */
export async function clusterView(pool: EtcdPool, opts: CallOpts = {}): Promise<ClusterView> {
  const specs = pool.inventory.members;
  const statuses = await Promise.all(
    specs.map(async (spec): Promise<MemberProbe> => {
      const base = { name: spec.name, endpoint: spec.clientURL, spec };
      try {
        return { ...base, ok: true, status: await memberStatus(pool, spec.clientURL, opts) };
      } catch (err) {
        const { kind, hint } = classify(err);
        const raw = err instanceof Error && err.cause !== undefined ? err.cause : err;
        return { ...base, ok: false, error: shortGrpcMessage(raw), errorKind: kind, errorClass: errorClass(err), ...(hint ? { hint } : {}) };
      }
    }),
  );
  // A cancelled run must not read as "every member is down".
  if (opts.signal?.aborted) throw new StepError('cancelled', 'cancelled while asking the members for their status');
  const answering = statuses.filter((p): p is MemberProbe & { ok: true } => p.ok);
  // Prefer asking the leader (fresh list, and a voter: learners refuse most calls).
  const leaderIds = [...new Set(answering.map((p) => p.status.leaderId).filter((id) => id !== '0'))];
  const order = [...answering].sort((a, b) => Number(b.status.isLeader) - Number(a.status.isLeader) || Number(a.status.isLearner) - Number(b.status.isLearner));
  const errors: string[] = [];
  let list: EtcdMember[] | null = null;
  for (const p of order) {
    try {
      list = (await memberList(pool, p.endpoint, opts)).members;
      break;
    } catch (err) {
      errors.push(shortGrpcMessage(err));
    }
  }
  // Alarms as the best member's status lists them: an Alarm(GET) request is a raft proposal (it writes to every
  // member's backend), and a read-only view (a plan, a probe) must not touch a cluster that is out of space.
  const alarms: Alarm[] | null = order[0] ? alarmsFromStatusErrors(order[0].status.errors) : null;
  const members = statuses.map((p) => {
    const m = list ? matchMember(p.spec, list, p.ok ? p.status.memberId : undefined) : undefined;
    return m ? { ...p, member: m } : p;
  });
  const known = new Set(members.flatMap((p) => (p.member ? [p.member.id] : [])));
  const clusterIds = [...new Set(answering.map((p) => p.status.clusterId))];
  const leaderId = leaderIds.length === 1 ? leaderIds[0]! : null;
  const leader = members.find((p): p is MemberProbe & { ok: true } => p.ok && leaderId !== null && p.status.memberId === leaderId);
  return {
    members,
    memberList: list,
    unknownMembers: (list ?? []).filter((m) => !known.has(m.id)),
    alarms,
    leaderId,
    leaderIds,
    ...(leader ? { leader } : {}),
    clusterIds,
    clusterId: clusterIds.length === 1 ? clusterIds[0]! : null,
    revision: Math.max(0, ...answering.map((p) => p.status.revision)),
    errors,
  };
}

/** Members the tool could not read for want of credentials or TLS trust (they may be healthy): the operator's input to fix. */
export function unreadable(view: Pick<ClusterView, 'members'>): (MemberProbe & { ok: false })[] {
  return view.members.filter((p): p is MemberProbe & { ok: false } => !p.ok && (p.errorClass === 'auth' || p.errorClass === 'tls'));
}

/** Is this inventory member a learner (per the member list, else its own status)? */
export function isLearner(p: MemberProbe): boolean {
  return p.member?.isLearner ?? (p.ok ? p.status.isLearner : false);
}

/** Hex id of an inventory member, when known. */
export function idOf(p: MemberProbe): string | undefined {
  return p.ok ? p.status.memberId : p.member?.id;
}

/**
 * Find a member by a reference as runbooks write it: inventory name, hex member id, peer URL or client URL.
 * Returns the inventory probe when the member is in the inventory.
 */
export function findMember(view: ClusterView, ref: string): MemberProbe | undefined {
  const r = ref.trim();
  const byName = view.members.find((p) => p.name === r);
  if (byName) return byName;
  if (/^https?:\/\//i.test(r)) {
    const u = normalizeURL(r);
    return view.members.find((p) => normalizeURL(p.spec.peerURL) === u || normalizeURL(p.spec.clientURL) === u || p.member?.peerURLs.some((x) => normalizeURL(x) === u));
  }
  if (looksLikeHexId(r) || /^[0-9a-f]{1,16}$/i.test(r)) {
    const id = r.toLowerCase().replace(/^0x/, '').replace(/^0+(?=.)/, '');
    return view.members.find((p) => idOf(p) === id) ?? view.members.find((p) => p.member?.name === r);
  }
  return view.members.find((p) => p.member?.name === r);
}
