/**
 * backup.build-target: rebuild, offline, the snapshot a point-in-time restore restores (src/backup/build-target.ts:
 * the newest full snapshot that reaches the target, deltas replayed one revision per transaction on a scratch
 * member, the result saved and verified). Never touches the cluster; the output has the shape of
 * etcd.snapshot-select's (path, sha256, revision), so etcd.restore-member restores it into every member with the
 * revision bumped (etcdutl --bump-revision on etcd >= 3.5).
 *
 * The result and a `target.json` describing it go to `<state dir>/pitr/<run id>/`: a resumed run finds them
 * (probe) and never rebuilds a different target.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildTarget, chooseTarget, type BuiltTarget, type TargetSpec } from '../backup/build-target.ts';
import { catalog, newestPoint } from '../backup/chain.ts';
import { writeFileAtomic } from '../drivers/safe-fs.ts';
import { currentRevision } from '../etcd/kv.ts';
import { localRestoreTool, revisionBump } from '../snapshot/etcd-tools.ts';
import { localHost, sha256File } from '../hosts/local.ts';
import { StepError } from '../util/errors.ts';
import { etcdPool } from './etcd-common.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type BuildTargetInput = ActionInput<'backup.build-target'>;

/** With `newest`, when deltas add nothing to the snapshot another step chose: nothing is built. */
export interface NotUsed {
  used: false;
  reason: string;
}

function specOf(input: BuildTargetInput): TargetSpec {
  const given = [input.at !== undefined, input.revision !== undefined, input.newest].filter(Boolean).length;
  if (given !== 1) throw new StepError('invalid', 'backup.build-target: give exactly one of at (a time), revision, or newest: true', { hint: 'e.g. -p at=2026-12-07T18:30:00Z or -p revision=12345' });
  if (input.revision !== undefined) return { revision: input.revision };
  if (input.at !== undefined) {
    const t = Date.parse(input.at);
    if (!Number.isFinite(t)) throw new StepError('invalid', `at: not a time: ${JSON.stringify(input.at)} (use ISO 8601, e.g. 2026-12-07T18:30:00Z)`);
    return { at: t };
  }
  return { newest: true };
}

function dirsOf(ctx: ActionContext, input: BuildTargetInput): string[] {
  const dirs = [...new Set([...(input.dirs ?? []), ...(ctx.inventory.snapshots?.dirs ?? [])])];
  if (dirs.length === 0) throw new StepError('invalid', `backup.build-target: inventory ${ctx.inventory.name} has no snapshots.dirs and the step gives no dirs`, { hint: 'set snapshots.dirs to the backup stream\'s dir' });
  return dirs;
}

function outDir(ctx: ActionContext): string {
  return join(ctx.stateDir, 'pitr', ctx.runId.replace(/[^A-Za-z0-9._-]/g, '-'), ctx.stepId);
}

function prefixes(changes: Record<string, number>): string {
  const e = Object.entries(changes);
  if (e.length === 0) return 'nothing changed after it in the backups';
  return `keys changed after it, per prefix: ${e.slice(0, 12).map(([p, n]) => `${p} ${n}`).join(', ')}${e.length > 12 ? `, … (${e.length - 12} more prefixes)` : ''}`;
}

/**
 * How far the restore must move revisions so the restored cluster starts above every revision it has had: the
 * cluster's current revision (the highest a member answers), or, when none answers (a power loss), the newest
 * revision the backups hold, minus the target, plus a margin (revisionBump). A fixed bump would not do: after one
 * point-in-time restore the cluster is a whole bump ahead, and a second restore to an earlier point with the same
 * bump would take revisions back. Undefined when the tool here cannot bump at all (etcd 3.4's etcdctl).
 */
async function chooseBump(ctx: ActionContext, target: number, newestBackup: number): Promise<number | undefined> {
  const tool = await localRestoreTool(localHost, ctx.inventory.etcdBinDir, ctx.signal);
  if (!tool.canBump) {
    // etcd 3.4.23's etcdctl cannot bump (no --bump-revision in its restore --help): any restore moves revisions back.
    ctx.log(`${tool.kind} ${tool.toolVersion ?? '?'} cannot bump revisions; the restored cluster starts at revision ${target}, behind what watchers saw`);
    return undefined;
  }
  const p = etcdPool(ctx);
  let live: number | undefined;
  for (const m of ctx.inventory.members) {
    try {
      const r = await currentRevision(p, m.name, { timeoutMs: 3000, signal: ctx.signal });
      live = Math.max(live ?? 0, r);
    } catch {
      // down (a power loss) or partitioned: the others, or the backups, tell
    }
  }
  const current = Math.max(live ?? 0, newestBackup);
  const bump = revisionBump(target, current);
  ctx.log(`${live !== undefined ? `cluster revision now ${live}` : 'no member answers'}; newest revision in the backups ${newestBackup}; the restored cluster starts at ${target + bump} (--bump-revision ${bump})`);
  return bump;
}

/** Newest mode: why the deltas are not worth a rebuild (no segments, or no newer than the other choice), else undefined. */
async function notWorthIt(ctx: ActionContext, input: BuildTargetInput): Promise<NotUsed | undefined> {
  if (!input.newest) return undefined;
  const c = await catalog(dirsOf(ctx, input), ctx.inventory.name, { signal: ctx.signal });
  if (c.spans.length === 0) return { used: false, reason: 'no delta segments in the snapshot dirs: the chosen snapshot is restored as is' };
  const np = newestPoint(c);
  if (!np) return { used: false, reason: 'no full snapshot from which the delta segments continue' };
  if (input.onlyIfNewerThan !== undefined && np.target <= input.onlyIfNewerThan) {
    return { used: false, reason: `the deltas reach revision ${np.target}, not past the chosen snapshot's ${input.onlyIfNewerThan}` };
  }
  return undefined;
}

/** What etcd.restore-member needs besides the snapshot: how far to move revisions (absent: the tool cannot). */
export type BuildTargetOutput = BuiltTarget & { bumpRevision?: number };

export const buildTargetAction: ImplementedAction = implement('backup.build-target', {
  async probe(ctx) {
    const file = join(outDir(ctx), 'target.json');
    if (!existsSync(file)) return { done: false, detail: 'no target built by this run yet' };
    const t = JSON.parse(readFileSync(file, 'utf8')) as BuildTargetOutput;
    if (!existsSync(t.path) || (await sha256File(t.path, ctx.signal)) !== t.sha256) return { done: false, detail: `${t.path} is missing or changed` };
    return { done: true, output: t, detail: `${t.path} (revision ${t.revision}) built by this run` };
  },

  async plan(ctx, input) {
    const skip = await notWorthIt(ctx, input);
    if (skip) return `nothing to rebuild: ${skip.reason}`;
    const c = await chooseTarget(dirsOf(ctx, input), ctx.inventory.name, specOf(input), ctx.signal);
    return [
      `target revision ${c.revision}${c.observedAt ? ` (observed ${c.observedAt})` : ''}`,
      `base snapshot ${c.base.path} (revision ${c.base.revision}, ${c.base.createdAt})`,
      `${c.replayRevisions} revision(s) replayed from ${c.segments.length} segment(s)${c.segments.length ? `: ${c.segments.map((s) => s.split('/').at(-1)).join(', ')}` : ''}`,
      `backups reach revision ${c.newestRevision}; ${prefixes(c.changesAfter)}`,
      ...c.problems.map((p) => `skipped: ${p}`),
      'built on a scratch member on private loopback ports, snapshotted and verified; the cluster is not touched by this step',
    ].join('; ');
  },

  async run(ctx, input) {
    const skip = await notWorthIt(ctx, input);
    if (skip) {
      ctx.log(skip.reason);
      return skip;
    }
    const spec = specOf(input);
    const dirs = dirsOf(ctx, input);
    const choice = await chooseTarget(dirs, ctx.inventory.name, spec, ctx.signal);
    ctx.log(`target revision ${choice.revision}${choice.observedAt ? ` observed ${choice.observedAt}` : ''}; ${prefixes(choice.changesAfter)}`);
    const bumpRevision = await chooseBump(ctx, choice.revision, choice.newestRevision);
    const out = outDir(ctx);
    const built = await buildTarget({
      inventory: ctx.inventory,
      dirs,
      spec: { revision: choice.revision },
      workDir: join(out, 'scratch'),
      outDir: out,
      signal: ctx.signal,
      log: (m) => ctx.log(m),
    });
    const output: BuildTargetOutput = { ...built, ...(bumpRevision !== undefined ? { bumpRevision } : {}) };
    writeFileAtomic(join(out, 'target.json'), `${JSON.stringify(output, null, 2)}\n`, 0o644);
    return output;
  },

  async verify(_ctx, _input, output) {
    if (!('path' in output)) return;
    if ((await sha256File(output.path)) !== output.sha256) throw new StepError('failed', `${output.path} changed right after it was built`);
  },
});
