/**
 * Is it safe to replace this member? Pure arithmetic over the member list, so the refusals (and their numbers)
 * are tested without a cluster. A removal is a raft proposal: it must commit in the current configuration
 * (a quorum of the voters now, counting the target if it is healthy), and afterwards the voters left must still
 * hold a quorum of the smaller configuration.
 */

/** Majority of n voters. */
export function quorumOf(n: number): number {
  return Math.floor(n / 2) + 1;
}

export interface VoterHealth {
  name: string;
  healthy: boolean;
}

export interface SafetyInput {
  /** Voters as etcd lists them (learners excluded), with whether each answers. */
  voters: VoterHealth[];
  /** Learners etcd lists (by name or id). */
  learners: string[];
  /** The member to replace; undefined when etcd no longer lists it (already removed: only the add is left). */
  target?: string;
}

export type Verdict =
  | { ok: true; summary: string; votersAfter: number; healthyAfter: string[]; quorumAfter: number }
  | { ok: false; reason: string; hint: string };

const names = (v: VoterHealth[]) => (v.length ? v.map((x) => x.name).join(', ') : 'none');

export function replacementVerdict(input: SafetyInput): Verdict {
  const { voters, learners, target } = input;
  if (learners.length > 0) {
    return {
      ok: false,
      reason: `a learner already exists (${learners.join(', ')}): etcd allows one learner at a time, and a replacement joins as one`,
      hint: 'if it is the replacement of an interrupted run, finish that run (runbook resume RUN); otherwise promote it or remove it (etcdctl member remove ID) first',
    };
  }
  const healthy = voters.filter((v) => v.healthy);
  const n = voters.length;
  if (target === undefined) {
    if (healthy.length < quorumOf(n)) {
      return {
        ok: false,
        reason: `no quorum: ${healthy.length} of ${n} voters healthy (${names(healthy)}), ${quorumOf(n)} needed to add a member`,
        hint: 'bring stopped members back first (or run power-loss-restore when they cannot come back)',
      };
    }
    return {
      ok: true,
      summary: `the member is already removed; ${healthy.length} of ${n} voters healthy (quorum ${quorumOf(n)})`,
      votersAfter: n,
      healthyAfter: healthy.map((v) => v.name),
      quorumAfter: quorumOf(n),
    };
  }
  if (n <= 2) {
    return {
      ok: false,
      reason:
        n === 2
          ? `the cluster has 2 voters: removing ${target} leaves a single voter with no fault tolerance` +
            ` (and while ${target} is down the removal cannot commit at all: it needs 2 of 2)`
          : `${target} is the only voter: there is nothing to replace it from`,
      hint: n === 2 ? 'add a third member first, or restore from a snapshot (power-loss-restore)' : 'restore from a snapshot (power-loss-restore)',
    };
  }
  const qNow = quorumOf(n);
  if (healthy.length < qNow) {
    return {
      ok: false,
      reason: `no quorum: ${healthy.length} of ${n} voters healthy (${names(healthy)}), ${qNow} needed to commit the removal of ${target}`,
      hint: 'bring the other stopped members back first (or run power-loss-restore when they cannot come back)',
    };
  }
  const after = healthy.filter((v) => v.name !== target);
  const qAfter = quorumOf(n - 1);
  if (after.length < qAfter) {
    return {
      ok: false,
      reason:
        `removing ${target} would lose quorum: ${n - 1} voters would remain of which ${after.length} healthy (${names(after)}), ` +
        `${qAfter} needed`,
      hint: 'bring the unhealthy members back first; replace members one at a time',
    };
  }
  return {
    ok: true,
    summary:
      `${healthy.length} of ${n} voters healthy (quorum ${qNow}); after removing ${target}: ${n - 1} voters, ` +
      `${after.length} healthy (quorum ${qAfter})`,
    votersAfter: n - 1,
    healthyAfter: after.map((v) => v.name),
    quorumAfter: qAfter,
  };
}
