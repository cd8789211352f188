/**
 * etcd.defrag, one member per forEach item. Before the leader is defragmented, leadership moves to a healthy voter
 * (one already defragmented when possible). The deadline scales with the db size; when the client gives up, the
 * server may still be defragmenting: poll its status until it answers with a smaller db, never re-issue.
 */
import { isOutcomeUnknown } from '../etcd/errors.ts';
import { defragment } from '../etcd/maintenance.ts';
import type { EtcdPool } from '../etcd/pool.ts';
import { memberStatus, reclaimable, type MemberStatus } from '../etcd/status.ts';
import { clusterView, type MemberProbe } from '../etcd/view.ts';
import { StepError } from '../util/errors.ts';
import { formatBytes, formatDuration } from '../util/units.ts';
import { atQuota, callOpts, etcdPool, itemMember, pollUntil, preflightOutput } from './etcd-common.ts';
import { pickSuccessor, transferLeadership } from './etcd-leader.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type DefragInput = ActionInput<'etcd.defrag'>;

export interface DefragOutput {
  member: string;
  memberId: string | null;
  skipped?: true;
  reason?: string;
  before: { dbSize: number; inUse: number } | null;
  after: { dbSize: number; inUse: number } | null;
  reclaimedBytes: number;
  durationMs?: number;
  leaderMovedTo?: string;
  /** The client timed out and the result was confirmed by polling status. */
  confirmedByPolling?: true;
}

/** Below this a defrag is not worth blocking a member for. */
export const MIN_RECLAIM_FLOOR = 64 * 1024;
const MIN_DEFRAG_TIMEOUT_MS = 30_000;
const GiB = 1024 ** 3;

export function defragTimeoutMs(dbSize: number, timeoutPerGiB: number): number {
  return Math.max(MIN_DEFRAG_TIMEOUT_MS, Math.ceil((timeoutPerGiB * dbSize) / GiB));
}

const sizes = (s: MemberStatus) => ({ dbSize: s.dbSize, inUse: s.dbSizeInUse });

function skip(s: MemberStatus, input: DefragInput, quotaBytes?: number): string | undefined {
  if (s.isLearner) return 'learner (learners are not defragmented by this step)';
  // Right after a compaction "in use" can still count the freed pages (bbolt frees them at a later write): a member
  // whose db is at the quota is always defragmented, or the alarm could never be disarmed.
  if (quotaBytes !== undefined && atQuota(s.dbSize, quotaBytes)) return undefined;
  const threshold = Math.max(input.minReclaimBytes, MIN_RECLAIM_FLOOR);
  const r = reclaimable(s);
  if (r < threshold) return `nothing to gain: ${formatBytes(r)} reclaimable (db ${formatBytes(s.dbSize)}, in use ${formatBytes(s.dbSizeInUse)}), below ${formatBytes(threshold)}`;
  return undefined;
}

function skipped(s: MemberStatus, reason: string): DefragOutput {
  return { member: s.name, memberId: s.memberId, skipped: true, reason, before: sizes(s), after: sizes(s), reclaimedBytes: 0 };
}

function shouldMoveLeader(ctx: ActionContext, input: DefragInput): boolean {
  return ctx.item?.moveLeaderFirst === true || input.moveLeaderFirst;
}

/** Status of the item member, or a skip when it is down and preflight allowed that. */
async function statusOrAllowedDown(ctx: ActionContext, pool: EtcdPool): Promise<MemberStatus | DefragOutput> {
  const m = itemMember(ctx, 'etcd.defrag');
  try {
    return await memberStatus(pool, m.clientURL, callOpts(ctx));
  } catch (err) {
    if (err instanceof StepError && err.kind === 'transient' && preflightOutput(ctx)?.unreachable.includes(m.name)) {
      return { member: m.name, memberId: null, skipped: true, reason: 'unreachable (allowed by preflight)', before: null, after: null, reclaimedBytes: 0 };
    }
    throw err;
  }
}

async function moveLeadershipAway(ctx: ActionContext, pool: EtcdPool, self: MemberStatus): Promise<string | undefined> {
  const view = await clusterView(pool, callOpts(ctx));
  const leader = view.members.find((p): p is MemberProbe & { ok: true } => p.ok && p.status.memberId === self.memberId);
  if (!leader || view.leaderId !== self.memberId) return undefined; // leadership moved meanwhile
  const to = pickSuccessor(view, { exclude: [self.name], prefer: ctx.item?.done ?? [] });
  if (!to) {
    ctx.log(`${self.name} leads and no other healthy voter can take over: defragmenting the leader in place`);
    return undefined;
  }
  await transferLeadership(ctx, pool, leader, to);
  return to.name;
}

/**
 * Issue one defragment with `timeoutMs`. When the outcome is unknown (client deadline, dropped connection) the server
 * may still be defragmenting (the member is blocked meanwhile) and a second request would queue a second defrag:
 * instead poll status (for `pollForMs`, default another `timeoutMs`, never past the step deadline) until it answers
 * with a smaller db.
 */
export async function defragmentOnce(ctx: ActionContext, pool: EtcdPool, before: MemberStatus, timeoutMs: number, pollForMs = timeoutMs): Promise<{ confirmedByPolling: boolean }> {
  try {
    await defragment(pool, before.endpoint, { timeoutMs, signal: ctx.signal });
    return { confirmedByPolling: false };
  } catch (err) {
    if (!isOutcomeUnknown(err) || ctx.signal.aborted) throw err;
    ctx.log(`defragment of ${before.name}: the client gave up (${(err as Error).message}); not re-issuing: polling status until it answers with a smaller db`);
  }
  await pollUntil(
    ctx,
    pollForMs,
    async () => {
      try {
        const s = await memberStatus(pool, before.endpoint, callOpts(ctx));
        return s.dbSize < before.dbSize ? { value: s } : { reason: `db still ${formatBytes(s.dbSize)}` };
      } catch (e) {
        const message = (e as Error).message;
        // Nothing listens any more: the process is gone, so no defrag can still be running there.
        if (/ECONNREFUSED|connection refused/i.test(message)) {
          throw new StepError('transient', `${before.name} went down during its defragment (${message}); no defrag is running there now`, {
            member: before.name,
            hint: 'start the member again, then resume: its defrag is checked (probe) before anything is re-issued',
          });
        }
        return { reason: message };
      }
    },
    { what: `defragment of ${before.name}`, member: before.name, intervalMs: 500, hint: 'the member may still be defragmenting: check its log before retrying' },
  );
  return { confirmedByPolling: true };
}

export async function defragMember(ctx: ActionContext, input: DefragInput): Promise<DefragOutput> {
  const pool = etcdPool(ctx);
  const first = await statusOrAllowedDown(ctx, pool);
  if (!('endpoint' in first)) {
    ctx.log(`skipping ${first.member}: ${first.reason}`);
    return first;
  }
  const before = first;
  const why = skip(before, input, preflightOutput(ctx)?.quota.bytes);
  if (why) {
    ctx.log(`skipping ${before.name}: ${why}`);
    return skipped(before, why);
  }
  let leaderMovedTo: string | undefined;
  if (before.isLeader && shouldMoveLeader(ctx, input)) leaderMovedTo = await moveLeadershipAway(ctx, pool, before);

  let timeoutMs = defragTimeoutMs(before.dbSize, input.timeoutPerGiB);
  if (ctx.deadline !== undefined) timeoutMs = Math.min(timeoutMs, Math.max(0, ctx.deadline - Date.now()));
  ctx.log(`defragmenting ${before.name}: db ${formatBytes(before.dbSize)}, in use ${formatBytes(before.dbSizeInUse)} (deadline ${formatDuration(timeoutMs)})`, { workBytes: before.dbSizeInUse, before: sizes(before) });
  const started = performance.now();
  const { confirmedByPolling } = await defragmentOnce(ctx, pool, before, timeoutMs);
  const durationMs = Math.round(performance.now() - started);
  const after = await memberStatus(pool, before.endpoint, callOpts(ctx));
  const reclaimedBytes = Math.max(0, before.dbSize - after.dbSize);
  ctx.log(`defragmented ${before.name} in ${formatDuration(durationMs)}: ${formatBytes(before.dbSize)} → ${formatBytes(after.dbSize)} (${formatBytes(reclaimedBytes)} reclaimed)`, { workBytes: before.dbSizeInUse, workMs: durationMs });
  return {
    member: before.name,
    memberId: before.memberId,
    before: sizes(before),
    after: sizes(after),
    reclaimedBytes,
    durationMs,
    ...(leaderMovedTo ? { leaderMovedTo } : {}),
    ...(confirmedByPolling ? { confirmedByPolling: true as const } : {}),
  };
}

export const defragAction: ImplementedAction = implement('etcd.defrag', {
  async probe(ctx, input) {
    const s = await statusOrAllowedDown(ctx, etcdPool(ctx));
    if (!('endpoint' in s)) return { done: true, output: s, detail: s.reason ?? 'skipped' };
    const why = skip(s, input, preflightOutput(ctx)?.quota.bytes);
    if (why) return { done: true, output: skipped(s, why), detail: why };
    return { done: false, detail: `${formatBytes(reclaimable(s))} reclaimable on ${s.name}` };
  },
  async plan(ctx, input) {
    const s = await statusOrAllowedDown(ctx, etcdPool(ctx));
    if (!('endpoint' in s)) return `skip ${s.member}: ${s.reason}`;
    const why = skip(s, input, preflightOutput(ctx)?.quota.bytes);
    if (why) return `skip ${s.name}: ${why}`;
    const lead = s.isLeader && shouldMoveLeader(ctx, input) ? `; ${s.name} leads: move leadership to another healthy voter first` : '';
    return `defragment ${s.name}: db ${formatBytes(s.dbSize)}, in use ${formatBytes(s.dbSizeInUse)}, ~${formatBytes(reclaimable(s))} to reclaim; deadline ${formatDuration(defragTimeoutMs(s.dbSize, input.timeoutPerGiB))}${lead}`;
  },
  run: defragMember,
});
