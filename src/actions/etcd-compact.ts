/**
 * etcd.compact: once, cluster-wide, at the current revision minus `keep`, physical. The revision is the step's
 * output (journaled, reused on resume). "Already compacted" at or beyond the target counts as done.
 */
import { isAlreadyCompacted } from '../etcd/errors.ts';
import { compact, compactedAtLeast, currentRevision } from '../etcd/kv.ts';
import type { EtcdPool } from '../etcd/pool.ts';
import { clusterView, isLearner, type ClusterView, type MemberProbe } from '../etcd/view.ts';
import { StepError } from '../util/errors.ts';
import { formatDuration } from '../util/units.ts';
import { callOpts, etcdPool, pollUntil } from './etcd-common.ts';
import type { ActionContext, ActionImpl } from './types.ts';

export interface CompactInput {
  keep: number;
  physical: boolean;
}

export interface CompactOutput {
  /** Compacted up to this revision (or it already was). */
  revision: number;
  /** The store revision when the target was chosen. */
  currentRevision: number;
  alreadyCompacted: boolean;
  /** The member the request went to (physical compaction is awaited there). */
  member: string;
  durationMs: number;
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

async function target(ctx: ActionContext, pool: EtcdPool, keep: number): Promise<{ to: Answering; current: number; revision: number }> {
  const to = requestTarget(await clusterView(pool, callOpts(ctx)));
  const current = await currentRevision(pool, to.endpoint, callOpts(ctx));
  return { to, current, revision: Math.max(1, current - keep) };
}

/** Physical compaction of a big backend takes a while: give it more than a plain request. */
const COMPACT_TIMEOUT_MS = 120_000;

export const compactAction: ActionImpl<CompactInput, CompactOutput> = {
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
    const { to, current, revision } = await target(ctx, pool, input.keep);
    const out = (alreadyCompacted: boolean): CompactOutput => ({ revision, currentRevision: current, alreadyCompacted, member: to.name, durationMs: Math.round(performance.now() - t0) });
    if (await compactedAtLeast(pool, to.endpoint, revision, callOpts(ctx))) {
      ctx.log(`already compacted up to revision ${revision}`);
      return out(true);
    }
    try {
      await compact(pool, to.endpoint, revision, input.physical, callOpts(ctx, { timeoutMs: COMPACT_TIMEOUT_MS }));
    } catch (err) {
      if (!isAlreadyCompacted(err)) throw err;
      ctx.log(`compaction at ${revision}: etcd says already compacted (done)`);
      return out(true);
    }
    const o = out(false);
    ctx.log(`compacted up to revision ${revision} through ${to.name} in ${formatDuration(o.durationMs)}`);
    return o;
  },
  /** Every answering voter has applied the compaction (asked serializably, each for itself). */
  async verify(ctx, _input, output) {
    const pool = etcdPool(ctx);
    const view = await clusterView(pool, callOpts(ctx));
    const voters = view.members.filter((p): p is Answering => p.ok && !isLearner(p));
    await pollUntil(
      ctx,
      10_000,
      async () => {
        const behind: string[] = [];
        for (const p of voters) {
          if (!(await compactedAtLeast(pool, p.endpoint, output.revision, { ...callOpts(ctx), serializable: true }))) behind.push(p.name);
        }
        return behind.length === 0 ? { value: true } : { reason: `not yet compacted to ${output.revision} on ${behind.join(', ')}` };
      },
      { what: 'compaction applied on every voter', intervalMs: 200 },
    );
  },
};
