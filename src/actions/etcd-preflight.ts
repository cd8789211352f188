/**
 * etcd.preflight: everything that can be checked before the cluster is touched. Refuses (precondition) on a
 * CORRUPT or unexpected alarm, an unreachable member (unless allowed), members etcd lists that the inventory
 * does not name, no leader, or too little free disk for a defrag (it writes a full copy of the db).
 */
import { statfs } from 'node:fs/promises';
import type { AlarmName } from '../etcd/maintenance.ts';
import { clusterView, idOf, isLearner, unreadable, type ClusterView, type MemberProbe } from '../etcd/view.ts';
import { oldestOf } from '../etcd/versions.ts';
import { StepError } from '../util/errors.ts';
import { formatBytes } from '../util/units.ts';
import { atQuota, callOpts, etcdPool, liveQuotas, quotaDisagreement, resolveQuota, type QuotaInfo } from './etcd-common.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type PreflightInput = ActionInput<'etcd.preflight'>;

export interface PreflightMember {
  name: string;
  endpoint: string;
  memberId: string | null;
  reachable: boolean;
  error?: string;
  dbSize: number | null;
  dbSizeInUse: number | null;
  isLearner: boolean;
  isLeader: boolean;
  version: string | null;
  /** Free bytes on the filesystem of the data dir (local members with a dataDir only). */
  diskFreeBytes?: number;
}

export interface PreflightOutput {
  cluster: string;
  clusterId: string | null;
  leader: { name: string; memberId: string } | null;
  revision: number;
  alarms: { member: string; memberId: string; alarm: string }[];
  quotaBytes: number;
  quotaSource: QuotaInfo['source'];
  members: PreflightMember[];
  /** The cluster's etcd version: its oldest answering member's (a cluster mid-upgrade runs at that). */
  etcdVersion: string | null;
  learners: string[];
  unreachable: string[];
  /** Members whose db is at the quota (≥ 95% of it): they raise NOSPACE again on the next write. */
  atQuota: string[];
  notes: string[];
}

function nameOfId(view: ClusterView, id: string): string {
  return view.members.find((p) => idOf(p) === id)?.name ?? view.memberList?.find((m) => m.id === id)?.name ?? id;
}

function refuse(message: string, opts: { member?: string; hint?: string } = {}): never {
  throw new StepError('precondition', message, opts);
}

async function diskFree(dir: string): Promise<number | { error: string }> {
  try {
    const s = await statfs(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch (err) {
    return { error: (err as NodeJS.ErrnoException).code ?? 'error' };
  }
}

function memberRow(p: MemberProbe, leaderId: string | null): PreflightMember {
  if (p.ok) {
    const s = p.status;
    return {
      name: p.name, endpoint: p.endpoint, memberId: s.memberId, reachable: true, dbSize: s.dbSize, dbSizeInUse: s.dbSizeInUse,
      isLearner: isLearner(p), isLeader: s.memberId === leaderId, version: s.version,
    };
  }
  return {
    name: p.name, endpoint: p.endpoint, memberId: p.member?.id ?? null, reachable: false, error: p.error, dbSize: null, dbSizeInUse: null,
    isLearner: p.member?.isLearner ?? false, isLeader: false, version: null,
  };
}

export async function preflight(ctx: ActionContext, input: PreflightInput): Promise<PreflightOutput> {
  const view = await clusterView(etcdPool(ctx), callOpts(ctx));
  const notes: string[] = [];
  const answering = view.members.filter((p) => p.ok);
  const down = view.members.filter((p): p is MemberProbe & { ok: false } => !p.ok);

  // Not reading a member for want of credentials or trust says nothing about its health: the inventory is what
  // to fix, and no allowUnreachable may turn it into "go on without it".
  const locked = unreadable(view);
  if (locked.length > 0) {
    throw new StepError('invalid', `cannot read ${locked.map((p) => `${p.name}: ${p.error}`).join('; ')}`, {
      ...(locked.length === 1 ? { member: locked[0]!.name } : {}),
      ...(locked[0]!.hint ? { hint: locked[0]!.hint } : {}),
    });
  }

  if (answering.length === 0) {
    refuse(`no member of ${ctx.inventory.name} answers: ${down.map((p) => `${p.name}: ${p.error}`).join('; ')}`, {
      hint: 'check the client URLs and TLS settings of the inventory; if every member is down, see power-loss-restore',
    });
  }
  if (view.clusterIds.length > 1) {
    refuse(`members report different cluster ids (${answering.map((p) => `${p.name}: ${p.status.clusterId}`).join(', ')}): the inventory mixes clusters`);
  }
  if (down.length > 0) {
    const list = down.map((p) => `${p.name} (${p.endpoint}): ${p.error}`).join('; ');
    if (!input.allowUnreachable) {
      refuse(`member${down.length > 1 ? 's' : ''} not answering: ${list}`, {
        ...(down.length === 1 ? { member: down[0]!.name } : {}),
        hint: 'start it, or pass allowUnreachable: true to go on without it (it is skipped)',
      });
    }
    notes.push(`skipping unreachable: ${list}`);
    ctx.log(`going on without unreachable member(s): ${down.map((p) => p.name).join(', ')}`);
  }
  if (!view.memberList) throw new StepError('transient', `member list unavailable: ${view.errors.join('; ')}`);
  for (const m of view.unknownMembers) {
    if (m.isLearner) notes.push(`learner ${m.name || m.id} (${m.peerURLs.join(',')}) is not in the inventory`);
    else refuse(`etcd lists voter ${m.name || '(unstarted)'} ${m.id} (${m.peerURLs.join(',')}) that inventory ${ctx.inventory.name} does not name: add it, or it cannot be recovered`);
  }

  const alarms = (view.alarms ?? []).map((a) => ({ member: nameOfId(view, a.memberId), memberId: a.memberId, alarm: a.alarm }));
  for (const a of alarms) {
    if (a.alarm === 'CORRUPT' && !input.expectAlarms.includes('CORRUPT')) {
      refuse(`CORRUPT alarm on ${a.member} (${a.memberId}): its data differs from the others; do not defragment or disarm`, {
        member: a.member,
        hint: 'compare hashes (etcdctl endpoint hashkv) and replace the member from a healthy one or restore from a snapshot',
      });
    }
    if (!(input.expectAlarms as string[]).includes(a.alarm)) refuse(`unexpected ${a.alarm} alarm on ${a.member} (${a.memberId})`, { member: a.member });
  }

  if (view.leaderId === null) {
    if (view.leaderIds.length > 1) throw new StepError('transient', `members disagree on the leader (${view.leaderIds.join(', ')}): an election is in progress`);
    refuse('no leader: the cluster has no quorum', { hint: 'start the stopped members; if they cannot come back, see power-loss-restore' });
  }

  const live = await liveQuotas(ctx);
  const quota = resolveQuota(ctx.inventory, input.quotaBytes, live.map((q) => q.bytes));
  const disagreement = quotaDisagreement(ctx.inventory, live);
  if (disagreement) {
    notes.push(disagreement);
    ctx.log(`warning: ${disagreement}`);
  }
  // A quota raise to a value no larger than the data already there would restart every member into NOSPACE (or
  // worse, a typo like quotaBytes=1.5 → 2 bytes): refuse before anything changes.
  if (input.quotaBytes !== undefined) {
    const largest = Math.max(0, ...view.members.map((p) => (p.ok ? p.status.dbSize : 0)));
    const floor = Math.max(1024 * 1024, Math.ceil(largest * 1.25));
    if (input.quotaBytes < floor) {
      refuse(`quotaBytes ${formatBytes(input.quotaBytes)} is too small: it must be at least ${formatBytes(floor)} (1.25 × the largest db, ${formatBytes(largest)}, and at least 1 MiB)`, {
        hint: 'give the quota with a unit, e.g. -p quotaBytes=8GiB',
      });
    }
  }
  const rows = view.members.map((p) => memberRow(p, view.leaderId));
  const short: string[] = [];
  if (input.headroomFactor > 0) {
    await Promise.all(
      view.members.map(async (p, i) => {
        if (!p.ok || p.spec.ssh || !p.spec.dataDir) return;
        const free = await diskFree(p.spec.dataDir);
        if (typeof free !== 'number') {
          notes.push(`${p.name}: cannot check free disk at ${p.spec.dataDir} (${free.error})`);
          return;
        }
        rows[i]!.diskFreeBytes = free;
        const need = Math.ceil(input.headroomFactor * p.status.dbSize);
        if (free < need) short.push(`${p.name}: ${formatBytes(free)} free at ${p.spec.dataDir}, needs ${formatBytes(need)} (${input.headroomFactor} × db ${formatBytes(p.status.dbSize)})`);
      }),
    );
  }
  if (short.length > 0) {
    refuse(`not enough free disk for a defrag (it writes a full copy of the db): ${short.join('; ')}`, {
      ...(short.length === 1 ? { member: short[0]!.split(':')[0]! } : {}),
      hint: 'free space on that filesystem, or lower headroomFactor if you know better',
    });
  }

  const learners = rows.filter((r) => r.isLearner).map((r) => r.name);
  const etcdVersion = oldestOf(rows.map((r) => r.version))?.text ?? null;
  const versions = [...new Set(rows.flatMap((r) => (r.version ? [r.version] : [])))];
  if (versions.length > 1) {
    notes.push(`mixed etcd versions (an upgrade in progress?): ${versions.map((v) => `${v} (${rows.filter((r) => r.version === v).map((r) => r.name).join(', ')})`).join(', ')}; the cluster runs at ${etcdVersion}`);
  }
  if (learners.length > 0) notes.push(`learners (skipped by defrag): ${learners.join(', ')}`);
  const full = rows.filter((r) => r.dbSize !== null && atQuota(r.dbSize, quota.bytes)).map((r) => r.name);
  const leader = view.leader ? { name: view.leader.name, memberId: view.leader.status.memberId } : { name: nameOfId(view, view.leaderId!), memberId: view.leaderId! };
  ctx.log(
    `leader ${leader.name}; alarms: ${alarms.map((a) => `${a.alarm}@${a.member}`).join(', ') || 'none'}; db sizes: ${rows.map((r) => `${r.name} ${r.dbSize === null ? '?' : `${formatBytes(r.dbSize)} (${Math.round((100 * r.dbSize) / quota.bytes)}%)`}`).join(', ')}; quota ${formatBytes(quota.bytes)} (${quota.source})`,
  );
  return {
    cluster: ctx.inventory.name,
    clusterId: view.clusterId,
    leader,
    revision: view.revision,
    alarms,
    quotaBytes: quota.bytes,
    quotaSource: quota.source,
    members: rows,
    etcdVersion,
    learners,
    unreachable: down.map((p) => p.name),
    atQuota: full,
    notes,
  };
}

export const preflightAction: ImplementedAction = implement('etcd.preflight', {
  /** The facts the run will decide on, read now: the quota the members run with (and where it came from), each db against it. */
  async plan(ctx, input) {
    const view = await clusterView(etcdPool(ctx), callOpts(ctx));
    const live = await liveQuotas(ctx);
    const quota = resolveQuota(ctx.inventory, input.quotaBytes, live.map((q) => q.bytes));
    const dbs = view.members.map((p) => (p.ok ? `${p.name} ${formatBytes(p.status.dbSize)} (${Math.round((100 * p.status.dbSize) / quota.bytes)}% of the quota)` : `${p.name} ?`));
    const warn = quotaDisagreement(ctx.inventory, live);
    return `check alarms, leader, members and disk; quota ${formatBytes(quota.bytes)} (${quota.source}); db ${dbs.join(', ')}${warn ? `; warning: ${warn}` : ''}`;
  },
  run: preflight,
});
