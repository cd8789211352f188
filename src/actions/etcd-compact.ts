/**
 * etcd.compact: once, cluster-wide, at the current revision minus `keep`, physical. The revision is the step's
 * output (journaled, reused on resume). "Already compacted" at or beyond the target counts as done.
 */
import { isAlreadyCompacted } from '../etcd/errors.ts';
import { compact, compactedAtLeast } from '../etcd/kv.ts';
import { compactionsFinished } from '../etcd/metrics.ts';
import type { EtcdPool } from '../etcd/pool.ts';
import { clusterView, isLearner, type ClusterView, type MemberProbe } from '../etcd/view.ts';
import { StepError } from '../util/errors.ts';
import { formatDuration } from '../util/units.ts';
import { callOpts, etcdPool, pollUntil } from './etcd-common.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type CompactInput = ActionInput<'etcd.compact'>;

export interface CompactOutput {
  /** Compacted up to this revision (or it already was). */
  revision: number;
  /** The store revision when the target was chosen. */
  currentRevision: number;
  alreadyCompacted: boolean;
  /** The member the request went to (physical compaction is awaited there). */
  member: string;
  durationMs: number;
  /**
   * Compactions each voter had finished before this one was requested (its /metrics), null where it did not say:
   * verify waits until each count goes up, i.e. the member has deleted the old revisions (see etcd/metrics.ts).
   */
  finishedBefore?: Record<string, number | null>;
}

type Answering = MemberProbe & { ok: true };

/** The leader when it answers, else any answering voter: where cluster-wide requests go. */
export function requestTarget(view: ClusterView): Answering {
  const voter = view.members.find((p): p is Answering => p.ok && !isLearner(p));
  const target = view.leader ?? voter;
  if (target) return target;
  const down = view.members.filter((p): p is MemberProbe & { ok: false } => !p.ok);
  // When every member fails the same avoidable way (TLS files, credentials), say so: retrying cannot help.
  const invalid = down.length === view.members.length && down.every((p) => p.errorKind === 'invalid');
  const hint = down.find((p) => p.hint)?.hint;
  throw new StepError(invalid ? 'invalid' : 'transient', `no voter answers: ${view.members.map((p) => (p.ok ? `${p.name}: learner` : `${p.name}: ${p.error}`)).join('; ')}`, {
    ...(view.members.length === 1 ? { member: view.members[0]!.name } : {}),
    ...(hint ? { hint } : {}),
  });
}

/**
 * Where the request goes and the revision to compact to. The store revision comes from the target's status (its
 * header revision: what that member has applied), not a separate read: one round trip less, and a revision read a
 * moment early only keeps a little more history, never less.
 */
async function target(ctx: ActionContext, pool: EtcdPool, keep: number): Promise<{ to: Answering; current: number; revision: number; view: ClusterView }> {
  const view = await clusterView(pool, callOpts(ctx));
  const to = requestTarget(view);
  const current = to.status.revision;
  return { to, current, revision: Math.max(1, current - keep), view };
}

const votersOf = (view: ClusterView) => view.members.filter((p): p is Answering => p.ok && !isLearner(p));

/** Longest wait for the voters to finish deleting the old revisions (the step's timeout bounds it first). */
const FINISH_WAIT_MS = 10 * 60_000;

/** Physical compaction of a big backend takes a while: give it more than a plain request. */
const COMPACT_TIMEOUT_MS = 120_000;

export const compactAction: ImplementedAction = implement('etcd.compact', {
  async probe(ctx, input) {
    const pool = etcdPool(ctx);
    const t0 = performance.now();
    const { to, current, revision } = await target(ctx, pool, input.keep);
    if (await compactedAtLeast(pool, to.endpoint, revision, callOpts(ctx))) {
      const out = { revision, currentRevision: current, alreadyCompacted: true, member: to.name, durationMs: Math.round(performance.now() - t0) };
      return { done: true, output: out, detail: `history already compacted up to revision ${revision} or later` };
    }
    return { done: false, detail: `would compact up to revision ${revision} (current ${current}, keep ${input.keep})` };
  },
  async plan(ctx, input) {
    const pool = etcdPool(ctx);
    const { to, current, revision } = await target(ctx, pool, input.keep);
    if (await compactedAtLeast(pool, to.endpoint, revision, callOpts(ctx))) return `nothing to do: already compacted up to revision ${revision}`;
    return `compact history up to revision ${revision} (current ${current}, keep ${input.keep})${input.physical ? ', physical' : ''}, through ${to.name}`;
  },
  async run(ctx, input) {
    const pool = etcdPool(ctx);
    const t0 = performance.now();
    // The compactions each member had finished, taken before the request (verify waits for each count to go up),
    // fetched while the target is chosen: every inventory member is asked, the voters' counts are kept.
    const baselines = input.physical
      ? Promise.all(pool.inventory.members.map((m) => compactionsFinished(pool, m.clientURL, callOpts(ctx, { timeoutMs: 2000 }))))
      : undefined;
    const { to, current, revision, view } = await target(ctx, pool, input.keep);
    let finishedBefore: Record<string, number | null> | undefined;
    if (baselines) {
      const counts = await baselines;
      const byName = new Map(pool.inventory.members.map((m, i) => [m.name, counts[i]]));
      finishedBefore = Object.fromEntries(votersOf(view).map((p) => [p.name, byName.get(p.name) ?? null]));
    }
    const out = (alreadyCompacted: boolean): CompactOutput => ({
      revision, currentRevision: current, alreadyCompacted, member: to.name, durationMs: Math.round(performance.now() - t0),
      // Only a compaction this call started has counts to wait on: an earlier one's deletes raised them already.
      ...(finishedBefore && !alreadyCompacted ? { finishedBefore } : {}),
    });
    // No "already compacted?" read first: etcd answers a compaction at or below its compact revision with
    // "required revision has been compacted", which is the same answer in one round trip.
    try {
      await compact(pool, to.endpoint, revision, input.physical, callOpts(ctx, { timeoutMs: COMPACT_TIMEOUT_MS }));
    } catch (err) {
      if (!isAlreadyCompacted(err)) throw err;
      ctx.log(`already compacted up to revision ${revision} (etcd says so)`);
      return out(true);
    }
    const o = out(false);
    ctx.log(`compacted up to revision ${revision} through ${to.name} in ${formatDuration(o.durationMs)}`);
    return o;
  },
  /**
   * Every answering voter has applied the compaction (asked serializably, each for itself) and, when `physical`,
   * finished deleting the old revisions: a member still deleting must not be defragmented yet (the defrag would
   * copy the history it is meant to drop). The request target's own deletion was awaited by the RPC.
   */
  async verify(ctx, input, output) {
    const pool = etcdPool(ctx);
    const voters = votersOf(await clusterView(pool, callOpts(ctx)));
    const unseen = new Set<string>();
    await pollUntil(
      ctx,
      input.physical ? FINISH_WAIT_MS : 10_000,
      async () => {
        const behind = (
          await Promise.all(
            voters.map(async (p): Promise<string | undefined> => {
              if (!(await compactedAtLeast(pool, p.endpoint, output.revision, { ...callOpts(ctx), serializable: true }))) return `${p.name} has not applied it yet`;
              // An earlier compaction (alreadyCompacted) raised the counts already: only the applied revision is checked.
              if (!input.physical || output.alreadyCompacted || p.name === output.member) return undefined;
              const before = output.finishedBefore?.[p.name];
              const now = before === null || before === undefined ? undefined : await compactionsFinished(pool, p.endpoint, callOpts(ctx, { timeoutMs: 2000 }));
              if (now === undefined) {
                if (!unseen.has(p.name)) ctx.log(`${p.name}: its metrics do not show compaction progress; only the scheduling is confirmed`);
                unseen.add(p.name);
                return undefined;
              }
              // A count below the baseline: the member restarted since (etcd finishes a pending compaction as it starts).
              return now !== before ? undefined : `${p.name} is still deleting old revisions`;
            }),
          )
        ).filter((x): x is string => x !== undefined);
        return behind.length === 0 ? { value: true } : { reason: `compaction at ${output.revision}: ${behind.join('; ')}` };
      },
      { what: `compaction finished on every voter`, intervalMs: 25 },
    );
  },
});
