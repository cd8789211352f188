/**
 * etcd.member-add: add the replacement (as a learner by default). A member with that peer URL already there =
 * done, with its id: so a crash right after the add, or a retry after a timeout, never adds a second member.
 * Right after another membership change etcd refuses with "unhealthy cluster" for a few seconds (its strict
 * reconfiguration check wants every voter connected for a while): that is waited out here, with backoff.
 */
import { callOpts, etcdPool, sleep } from './etcd-common.ts';
import type { ActionContext } from './types.ts';
import { shortGrpcMessage } from '../etcd/errors.ts';
import { sameURL } from '../etcd/ids.ts';
import { memberAdd } from '../etcd/membership.ts';
import { StepError } from '../util/errors.ts';
import { formatDuration } from '../util/units.ts';
import { backoff, isPeerURLExists, isTooManyLearners, isUnhealthyCluster, isUnknownOutcome, preflightRecord, rosterWithLeader } from './membership-common.ts';
import { describeEntry, readRoster, type Roster, type RosterEntry } from './membership-roster.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type AddInput = ActionInput<'etcd.member-add'>;

export interface AddOutput {
  /** Hex id of the new member: the later steps (start, promote) use this one. */
  id: string;
  name: string;
  peerURL: string;
  isLearner: boolean;
  /** false: a member with this peer URL was already there (an earlier attempt added it). */
  added: boolean;
}

const ADD_WAIT_MS = 90_000;

/** The member holding this peer URL, and whether it is the member being replaced (not removed yet). */
function holder(ctx: ActionContext, roster: Roster, input: AddInput): { entry: RosterEntry; old: boolean } | undefined {
  const e = roster.entries.find((x) => x.member.peerURLs.some((u) => sameURL(u, input.peerURL)));
  if (!e) return undefined;
  const old = preflightRecord(ctx, input.name)?.member.id;
  return { entry: e, old: old !== undefined && old !== null && e.member.id === old };
}

const existing = (input: AddInput, e: RosterEntry): AddOutput => ({ id: e.member.id, name: input.name, peerURL: input.peerURL, isLearner: e.member.isLearner, added: false });

export const memberAddAction: ImplementedAction = implement('etcd.member-add', {
  async probe(ctx, input) {
    const roster = await readRoster(etcdPool(ctx), callOpts(ctx));
    if (!roster.linearizable) return { done: false, detail: 'no quorum read of the member list' };
    const h = holder(ctx, roster, input);
    if (!h) return { done: false, detail: `no member has peer URL ${input.peerURL}` };
    if (h.old) return { done: false, detail: `${input.peerURL} still belongs to the member being replaced, ${describeEntry(h.entry)}` };
    return { done: true, output: existing(input, h.entry), detail: `${input.peerURL} is already member ${h.entry.member.id}` };
  },

  async plan(ctx, input) {
    const roster = await readRoster(etcdPool(ctx), callOpts(ctx));
    const e = roster.entries.find((x) => x.member.peerURLs.some((u) => sameURL(u, input.peerURL)));
    const now = e ? ` (now held by ${describeEntry(e)}, which the removal before this step takes out)` : '';
    return `add ${input.name} at ${input.peerURL}${input.learner ? ' as a learner' : ''}${now}; retried with backoff while etcd answers "unhealthy cluster"`;
  },

  async run(ctx, input) {
    const pool = etcdPool(ctx);
    const started = Date.now();
    const until = Math.min(started + ADD_WAIT_MS, ctx.deadline ?? Infinity);
    let reason = '';
    for (let i = 0; ; i++) {
      const roster = await rosterWithLeader(ctx, pool);
      const h = holder(ctx, roster, input);
      if (h?.old) {
        throw new StepError('precondition', `peer URL ${input.peerURL} still belongs to the member being replaced, ${describeEntry(h.entry)}: remove it first`, { member: input.name });
      }
      if (h) {
        ctx.log(`${input.peerURL} is already member ${h.entry.member.id}${h.entry.member.isLearner ? ' (a learner)' : ''}: not adding another`);
        return existing(input, h.entry);
      }
      try {
        const res = await memberAdd(pool, roster.leader.endpoint!, [input.peerURL], input.learner, callOpts(ctx, { timeoutMs: Math.max(pool.requestTimeoutMs, 10_000) }));
        const waited = Date.now() - started;
        ctx.log(`added ${input.name} at ${input.peerURL}${input.learner ? ' as a learner' : ''}: member id ${res.member.id}${i > 0 ? ` (after ${formatDuration(waited)}: ${reason})` : ''}`, { id: res.member.id });
        return { id: res.member.id, name: input.name, peerURL: input.peerURL, isLearner: res.member.isLearner, added: true };
      } catch (err) {
        if (isTooManyLearners(err)) {
          throw new StepError('precondition', `etcd refuses a second learner: ${shortGrpcMessage(err)}`, { hint: 'promote or remove the existing learner first', member: input.name });
        }
        if (isPeerURLExists(err)) reason = 'the peer URL exists (added meanwhile)';
        else if (isUnhealthyCluster(err)) reason = 'etcd answered "unhealthy cluster" (strict reconfiguration check after the last membership change)';
        else if (isUnknownOutcome(err)) reason = `outcome unknown: ${shortGrpcMessage(err)}`;
        else throw err;
      }
      if (Date.now() >= until) break;
      await sleep(Math.min(backoff(i), Math.max(0, until - Date.now())), ctx.signal);
    }
    throw new StepError('transient', `member add ${input.peerURL}: not done after ${formatDuration(ADD_WAIT_MS)}: ${reason}`, { member: input.name });
  },

  async verify(ctx, input, output) {
    const roster = await rosterWithLeader(ctx, etcdPool(ctx));
    const e = roster.entries.find((x) => x.member.id === output.id);
    if (!e) throw new StepError('failed', `member ${output.id} (${input.peerURL}) is not listed after the add`, { member: input.name });
  },
});
