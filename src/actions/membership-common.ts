/**
 * What the membership actions share: recognizing etcd's answers to membership calls, waiting for a leader, and
 * finding the preflight's journaled output.
 */
import { GRPCDeadlineExceededError, GRPCFailedPreconditionError, GRPCNotFoundError, GRPCUnavailableError } from 'etcd3';
import type { EtcdPool } from '../etcd/pool.ts';
import { callOpts, sleep } from './etcd-common.ts';
import type { ActionContext } from './types.ts';
import { StepError, messageOf } from '../util/errors.ts';
import { formatDuration } from '../util/units.ts';
import type { DirIdentity } from './membership-data-dir.ts';
import { readRoster, type Roster, type RosterEntry } from './membership-roster.ts';

/** The etcd3 error behind a StepError made by callMember (or the error itself). */
function grpc(err: unknown): unknown {
  return err instanceof StepError && err.cause !== undefined ? err.cause : err;
}

const text = (err: unknown) => messageOf(grpc(err));

/** "etcdserver: unhealthy cluster": strict reconfig check; right after another membership change it lasts seconds. */
export function isUnhealthyCluster(err: unknown): boolean {
  return grpc(err) instanceof GRPCUnavailableError && /unhealthy cluster/i.test(text(err));
}

export function isPeerURLExists(err: unknown): boolean {
  return grpc(err) instanceof GRPCFailedPreconditionError && /peer ?urls? already exist/i.test(text(err));
}

export function isTooManyLearners(err: unknown): boolean {
  return grpc(err) instanceof GRPCFailedPreconditionError && /too many learner/i.test(text(err));
}

/** "can only promote a learner member which is in sync with leader". */
export function isLearnerNotReady(err: unknown): boolean {
  return grpc(err) instanceof GRPCFailedPreconditionError && /in sync/i.test(text(err));
}

/** "can only promote a learner member": it is a voter already. */
export function isNotLearner(err: unknown): boolean {
  return grpc(err) instanceof GRPCFailedPreconditionError && /only promote a learner/i.test(text(err)) && !/in sync/i.test(text(err));
}

export function isMemberNotFound(err: unknown): boolean {
  return grpc(err) instanceof GRPCNotFoundError || /member not found/i.test(text(err));
}

/** The request may or may not have been applied (timed out, connection lost, leader changed mid-call). */
export function isUnknownOutcome(err: unknown): boolean {
  const e = grpc(err);
  return e instanceof GRPCDeadlineExceededError || (e instanceof GRPCUnavailableError && !isUnhealthyCluster(err)) || /leader changed|request timed out/i.test(text(err));
}

export const LEADER_WAIT_MS = 30_000;

/**
 * Read the roster until the member list is a quorum read and a leader that answers is agreed on (after a leader
 * was killed, the others name it until the election timeout; a membership change sent then is lost).
 */
export async function rosterWithLeader(ctx: ActionContext, pool: EtcdPool, waitMs = LEADER_WAIT_MS, callMs?: number): Promise<Roster & { leader: RosterEntry }> {
  const until = Math.min(Date.now() + waitMs, ctx.deadline ?? Infinity);
  let reason = '';
  for (let i = 0; ; i++) {
    const roster = await readRoster(pool, callOpts(ctx, callMs === undefined ? {} : { timeoutMs: callMs }));
    if (roster.linearizable && roster.leader) return roster as Roster & { leader: RosterEntry };
    reason = !roster.entries.length
      ? `no member answers the member list${roster.errors.length ? ` (${roster.errors.join('; ')})` : ''}`
      : !roster.linearizable
        ? 'the member list is not available through a leader (no quorum?)'
        : 'no leader that answers (an election may be under way)';
    if (Date.now() >= until) break;
    await sleep(Math.min(250 * 2 ** Math.min(i, 3), Math.max(0, until - Date.now())), ctx.signal);
  }
  throw new StepError('transient', `no leader after ${formatDuration(waitMs)}: ${reason}`, {
    hint: 'a membership change needs a working quorum with a leader',
  });
}

/** Delay before poll attempt i (0-based): 250 ms growing ×1.5 to 3 s. */
export function backoff(i: number): number {
  return Math.min(3000, Math.round(250 * 1.5 ** i));
}

/** The journaled output of etcd.replacement-preflight in this run (found by its shape, whatever its step id). */
export interface PreflightRecord {
  kind: 'member-replacement-preflight';
  member: { name: string; id: string | null; peerURL: string; clientURL: string; alive: boolean; leader: boolean; inCluster: boolean };
  dataDir?: DirIdentity;
}

export function preflightRecord(ctx: ActionContext, name?: string): PreflightRecord | undefined {
  for (const rec of Object.values(ctx.steps)) {
    const o = rec.output as Partial<PreflightRecord> | undefined;
    if (rec.status === 'succeeded' && o?.kind === 'member-replacement-preflight' && o.member && (name === undefined || o.member.name === name)) {
      return o as PreflightRecord;
    }
  }
  return undefined;
}
