/**
 * etcd.member-promote: promote a learner to a voter once it is in sync. etcd refuses ("can only promote a learner
 * member which is in sync with leader") until then, so the promote is polled with backoff up to `waitFor`.
 * Already a voter = done. Verification: every voter answers, one leader, equal KV hashes.
 */
import { callOpts, etcdPool, sleep } from './etcd-common.ts';
import type { ActionContext } from './types.ts';
import { shortGrpcMessage } from '../etcd/errors.ts';
import { memberPromote } from '../etcd/membership.ts';
import { StepError } from '../util/errors.ts';
import { formatDuration } from '../util/units.ts';
import { isLearnerNotReady, isNotLearner, isUnhealthyCluster, isUnknownOutcome, preflightRecord, rosterWithLeader } from './membership-common.ts';
import { findInRoster, label, readRoster } from './membership-roster.ts';
import { votersHealthy, type VotersHealthy } from './membership-verify.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type PromoteInput = ActionInput<'etcd.member-promote'>;

export interface PromoteOutput {
  id: string;
  name: string;
  /** false: it was a voter already. */
  promoted: boolean;
  verified?: VotersHealthy;
}

const VERIFY_WAIT_MS = 60_000;
const PROBE_VERIFY_MS = 3_000;
/**
 * Each member's status while the promote is polled: a learner that is still loading what the leader sent it
 * accepts connections but answers nothing until it is ready, and waiting out that call would hold up the very
 * promote etcd is about to allow. The leader and the member list come from the members that answer at once.
 */
const ROSTER_CALL_MS = 1000;

export const memberPromoteAction: ImplementedAction = implement('etcd.member-promote', {
  async probe(ctx, input) {
    const roster = await readRoster(etcdPool(ctx), callOpts(ctx, { timeoutMs: ROSTER_CALL_MS }));
    if (!roster.linearizable) return { done: false, detail: 'no quorum read of the member list' };
    const f = findInRoster(roster, input.member);
    if (f?.kind !== 'member') return { done: false, detail: `${input.member} is not a member` };
    if (isOldMember(ctx, f.entry.member.id)) return { done: false, detail: `${input.member} is still the member being replaced (${f.entry.member.id})` };
    if (f.entry.member.isLearner) return { done: false, detail: `${label(f.entry)} (${f.entry.member.id}) is a learner` };
    let verified: VotersHealthy;
    try {
      verified = await votersHealthy(ctx, PROBE_VERIFY_MS);
    } catch (err) {
      if (err instanceof StepError && err.kind === 'precondition') throw err;
      return { done: false, detail: `${label(f.entry)} is a voter, but: ${(err as Error).message}` };
    }
    return { done: true, output: { id: f.entry.member.id, name: label(f.entry), promoted: false, verified }, detail: `${label(f.entry)} is a voter; every voter answers with equal hashes` };
  },

  async plan(_ctx, input) {
    return `promote ${input.member} to a voter once it is in sync (polled with backoff, up to ${formatDuration(input.waitFor)}); then check every voter answers with equal hashes`;
  },

  async run(ctx, input) {
    const pool = etcdPool(ctx);
    const started = Date.now();
    const until = Math.min(started + input.waitFor, ctx.deadline ?? Infinity);
    let reason = '';
    for (let i = 0; ; i++) {
      const roster = await rosterWithLeader(ctx, pool, undefined, ROSTER_CALL_MS);
      const f = findInRoster(roster, input.member);
      if (f?.kind !== 'member') {
        throw new StepError('precondition', `cannot promote ${input.member}: it is not a member of the cluster`, { hint: 'was it removed? add it again (etcd.member-add) and start it' });
      }
      const e = f.entry;
      if (isOldMember(ctx, e.member.id)) {
        throw new StepError('precondition', `${input.member} is still the member being replaced (${e.member.id}), not its replacement`, { hint: 'promote by the id the add step gave' });
      }
      if (!e.member.isLearner) {
        ctx.log(`${label(e)} (${e.member.id}) is a voter${i > 0 ? ` after ${formatDuration(Date.now() - started)}` : ' already'}`);
        return verified(ctx, { id: e.member.id, name: label(e), promoted: i > 0 }, input.hashes);
      }
      try {
        await memberPromote(pool, roster.leader.endpoint!, e.member.id, callOpts(ctx, { timeoutMs: Math.max(pool.requestTimeoutMs, 10_000) }));
        ctx.log(`promoted ${label(e)} (${e.member.id}) to a voter${i > 0 ? ` after ${formatDuration(Date.now() - started)} (${reason})` : ''}`);
        return verified(ctx, { id: e.member.id, name: label(e), promoted: true }, input.hashes);
      } catch (err) {
        if (isLearnerNotReady(err)) reason = 'the learner is not in sync with the leader yet';
        else if (isNotLearner(err)) reason = 'etcd says it is not a learner (promoted meanwhile?)';
        else if (isUnhealthyCluster(err)) reason = 'etcd answered "unhealthy cluster"';
        else if (isUnknownOutcome(err)) reason = `outcome unknown: ${shortGrpcMessage(err)}`;
        else throw err;
      }
      if (Date.now() >= until) break;
      await sleep(Math.min(promotePollMs(i), Math.max(0, until - Date.now())), ctx.signal);
    }
    throw new StepError('transient', `promote ${input.member}: still a learner after ${formatDuration(input.waitFor)}: ${reason}`, {
      hint: 'is the new member running and reachable from the leader on its peer URL? look at its log',
    });
  },
});

/**
 * Between promote attempts: 100 ms for the first ~minute (about 600 attempts), 500 ms after. A learner is
 * promotable the moment it is in sync (this poll is the wait for its catch-up), and each attempt is a few cheap
 * calls, so a tight poll costs little and the cluster regains its full redundancy as soon as etcd allows (a
 * backoff would leave it waiting at reduced strength for up to the last interval).
 */
function promotePollMs(i: number): number {
  return i < 600 ? 100 : 500;
}

/** The member the preflight of this run chose to replace (promote must never take it for its replacement). */
function isOldMember(ctx: ActionContext, id: string): boolean {
  const old = preflightRecord(ctx)?.member.id;
  return old !== undefined && old !== null && old === id;
}

/** The promotion is only done when the cluster took it well: every voter answers, one leader, equal hashes (unless a later step compares them). */
async function verified(ctx: ActionContext, out: PromoteOutput, hashes: boolean): Promise<PromoteOutput> {
  const v = await votersHealthy(ctx, VERIFY_WAIT_MS, undefined, { hashes });
  if (!v.voters.includes(out.name)) throw new StepError('failed', `${out.name} is not among the voters after promotion: ${v.voters.join(', ')}`);
  ctx.log(`every voter answers (${v.voters.join(', ')}), leader ${v.leader}${v.hash ? `, equal KV hashes at revision ${v.hash.revision}` : ' (KV hashes: compared by a later step)'}`);
  return { ...out, verified: v };
}
