/**
 * After a replacement: every voter etcd lists answers (asked where etcd says it serves, so a replacement on a new
 * address counts even while the inventory still names the old one), they agree on one leader, and their KV hashes
 * are equal.
 */
import { compareHashes } from './etcd-cluster-healthy.ts';
import { callOpts, etcdPool, pollUntil } from './etcd-common.ts';
import type { ActionContext } from './types.ts';
import { StepError } from '../util/errors.ts';
import { answers, isVoter, label, readRoster } from './membership-roster.ts';

export interface VotersHealthy {
  voters: string[];
  leader: string;
  /** Absent when not compared (`hashes: false`). */
  hash?: { revision: number; value: number };
}

export async function votersHealthy(ctx: ActionContext, waitForMs: number, expectVoters?: number, o: { hashes?: boolean } = {}): Promise<VotersHealthy> {
  const pool = etcdPool(ctx);
  return pollUntil<VotersHealthy>(
    ctx,
    waitForMs,
    async () => {
      try {
        const roster = await readRoster(pool, callOpts(ctx));
        if (!roster.linearizable) return { reason: 'no quorum read of the member list' };
        const voters = roster.entries.filter(isVoter);
        const down = voters.filter((e) => !answers(e) || e.status?.isLearner);
        if (down.length) return { reason: `not answering as voters: ${down.map((e) => `${label(e)} (${e.error ?? 'learner'})`).join('; ')}` };
        if (expectVoters !== undefined && voters.length !== expectVoters) return { reason: `${voters.length} voters, expected ${expectVoters}` };
        const leaders = new Set(voters.map((e) => e.status!.leaderId));
        if (leaders.size !== 1 || leaders.has('0') || !roster.leader) return { reason: `no agreed leader: ${voters.map((e) => `${label(e)}→${e.status!.leaderId}`).join(' ')}` };
        if (o.hashes === false) return { value: { voters: voters.map(label), leader: label(roster.leader) } };
        const h = await compareHashes(ctx, pool, voters.map((e) => ({ name: label(e), endpoint: e.endpoint! })));
        if ('reason' in h) return h;
        return { value: { voters: voters.map(label), leader: label(roster.leader), hash: h.value } };
      } catch (err) {
        if (err instanceof StepError && (err.kind === 'precondition' || err.kind === 'cancelled')) throw err;
        return { reason: (err as Error).message };
      }
    },
    // Polled tightly (each poll is a status call per member and one member list): after a promotion the new voter
    // answers once it has loaded what the leader sent it, and a backoff to seconds would only add to the wait.
    { what: 'every voter healthy with equal hashes', intervalMs: 100, maxIntervalMs: 200 },
  );
}
