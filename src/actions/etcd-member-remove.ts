/**
 * etcd.member-remove: remove a member by id (or name / peer URL), through a voter that is not the one being
 * removed, once a leader answers. Already gone = done. An unknown outcome (timeout, leader change) is settled by
 * reading the member list again, never by blindly re-sending.
 */
import { callOpts, etcdPool, sleep } from './etcd-common.ts';
import type { ActionContext } from './types.ts';
import { shortGrpcMessage } from '../etcd/errors.ts';
import { memberRemove } from '../etcd/membership.ts';
import { StepError } from '../util/errors.ts';
import { formatDuration } from '../util/units.ts';
import { backoff, isMemberNotFound, isUnhealthyCluster, isUnknownOutcome, rosterWithLeader } from './membership-common.ts';
import { answers, findInRoster, isVoter, label, readRoster, type Roster, type RosterEntry } from './membership-roster.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type RemoveInput = ActionInput<'etcd.member-remove'>;

export interface RemoveOutput {
  /** Hex id of the removed member (null when the reference matched no member: nothing to remove). */
  id: string | null;
  name: string;
  peerURLs: string[];
  /** false: it was already gone. */
  removed: boolean;
}

const REMOVE_WAIT_MS = 60_000;

function target(roster: Roster, ref: string): RosterEntry | undefined {
  const found = findInRoster(roster, ref);
  return found?.kind === 'member' ? found.entry : undefined;
}

function gone(ref: string): RemoveOutput {
  return { id: /^[0-9a-f]{1,16}$/.test(ref) ? ref : null, name: ref, peerURLs: [], removed: false };
}

/** A voter that answers and is not the member being removed: the leader when it qualifies. */
function via(roster: Roster & { leader: RosterEntry }, t: RosterEntry): RosterEntry | undefined {
  if (roster.leader.member.id !== t.member.id) return roster.leader;
  return roster.entries.find((e) => e.member.id !== t.member.id && isVoter(e) && answers(e));
}

async function removeOnce(ctx: ActionContext, input: RemoveInput): Promise<{ done: RemoveOutput } | { retry: string }> {
  const pool = etcdPool(ctx);
  const roster = await rosterWithLeader(ctx, pool);
  const t = target(roster, input.member);
  if (!t) return { done: gone(input.member) };
  const through = via(roster, t);
  if (!through?.endpoint) return { retry: `no voter other than ${label(t)} answers` };
  try {
    await memberRemove(pool, through.endpoint, t.member.id, callOpts(ctx, { timeoutMs: Math.max(pool.requestTimeoutMs, 10_000) }));
    return { done: { id: t.member.id, name: label(t), peerURLs: t.member.peerURLs, removed: true } };
  } catch (err) {
    if (isMemberNotFound(err)) return { retry: 'member not found (removed meanwhile?)' };
    if (isUnhealthyCluster(err)) return { retry: 'etcd says "unhealthy cluster" (strict reconfiguration check: the other voters must be connected)' };
    if (isUnknownOutcome(err)) return { retry: `outcome unknown: ${shortGrpcMessage(err)}` };
    throw err;
  }
}

export const memberRemoveAction: ImplementedAction = implement('etcd.member-remove', {
  async probe(ctx, input) {
    const roster = await readRoster(etcdPool(ctx), callOpts(ctx));
    if (!roster.linearizable) return { done: false, detail: 'no quorum read of the member list' };
    const t = target(roster, input.member);
    if (t) return { done: false, detail: `${label(t)} (${t.member.id}) is a member` };
    return { done: true, output: gone(input.member), detail: `${input.member} is not a member` };
  },

  async plan(ctx, input) {
    const roster = await readRoster(etcdPool(ctx), callOpts(ctx));
    const t = target(roster, input.member);
    if (!t) return `nothing to remove: ${input.member} is not a member`;
    return `wait for a leader, then remove ${label(t)} (id ${t.member.id}, ${t.member.peerURLs.join(', ')}) from the cluster`;
  },

  async run(ctx, input) {
    const started = Date.now();
    const until = Math.min(started + REMOVE_WAIT_MS, ctx.deadline ?? Infinity);
    let reason = '';
    for (let i = 0; ; i++) {
      const r = await removeOnce(ctx, input);
      if ('done' in r) {
        const o = r.done;
        ctx.log(o.removed ? `removed ${o.name} (id ${o.id}) from the cluster${i > 0 ? ` after ${formatDuration(Date.now() - started)} (${reason})` : ''}` : `${input.member} is not a member: nothing to remove`);
        return o;
      }
      reason = r.retry;
      if (Date.now() >= until) break;
      await sleep(Math.min(backoff(i), Math.max(0, until - Date.now())), ctx.signal);
    }
    throw new StepError('transient', `member remove ${input.member}: not done after ${formatDuration(REMOVE_WAIT_MS)}: ${reason}`);
  },

  async verify(ctx, input, output) {
    if (!output.removed) return;
    const roster = await rosterWithLeader(ctx, etcdPool(ctx));
    if (roster.entries.some((e) => e.member.id === output.id)) {
      throw new StepError('failed', `member ${output.name} (${output.id}) is still listed after its removal`, { member: output.name });
    }
    void input;
  },
});
