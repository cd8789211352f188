/**
 * A snapshot taken beside the steps that follow it: `etcd.snapshot-begin` returns as soon as the member has begun
 * to send it, and `etcd.snapshot-wait` (a later step) waits for the rest, verified, with its manifest and
 * retention, like `etcd.snapshot-save`.
 *
 * Why this is still a snapshot from BEFORE those steps: etcd takes a snapshot from one read transaction, opened
 * when the stream starts; the first message proves it is open, and what the cluster does afterwards (a member
 * removed, one added) is not in it. member-replacement uses it so that streaming a multi-GB snapshot and the
 * replacement catching up (which also moves the whole keyspace) overlap instead of following each other. The
 * stream comes from a member the runbook does not touch (`avoidMember`).
 *
 * The stream lives in this process. If the run ends before the wait step (a later step failed), the end of the run
 * waits for the snapshot to finish (resources are disposed before run.finished), so a failed change still leaves
 * its restore point. If the process died (a resumed run), the wait step finds the file finished (its manifest is
 * there) or, when it was cut short, takes a new snapshot and says it is from after the change.
 */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { readManifest } from '../snapshot/manifest.ts';
import { applyRetention } from '../snapshot/retention.ts';
import { saveSnapshot, type SaveResult } from '../snapshot/save.ts';
import { StepError } from '../util/errors.ts';
import { formatBytes, formatDuration } from '../util/units.ts';
import { etcdPool } from './etcd-common.ts';
import { policyOf, snapshotDir, snapshotSaveAction, sourceMember, type SnapshotSaveInput, type SnapshotSaveOutput } from './snapshot-save.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export interface BackgroundStarted {
  background: true;
  /** The file it is being written to (`<path>.part` until verified). */
  path: string;
  member: string;
  /** Revision in the stream's first header: the snapshot's point in time. */
  revision?: number;
  startedAt: string;
}

interface InFlight {
  input: SnapshotSaveInput;
  member: string;
  t0: number;
  done: Promise<SaveResult>;
  /** Let a held stream go on (no-op when it was not held). */
  release: () => void;
}

export type SnapshotBeginInput = ActionInput<'etcd.snapshot-begin'>;

/** A held stream goes on by itself after this long, whatever happens between (a bound, not a schedule). */
const MAX_HOLD_MS = 30 * 60_000;

/** The run's snapshots in flight, by step id. Disposal at the end of the run lets each go on and waits for it. */
function inFlight(ctx: ActionContext): Map<string, InFlight> {
  return ctx.resources.get('background-snapshots', () => new Map<string, InFlight>(), async (m) => {
    for (const f of m.values()) f.release();
    await Promise.allSettled([...m.values()].map((f) => f.done));
  });
}

async function beginSnapshot(ctx: ActionContext, input: SnapshotBeginInput): Promise<BackgroundStarted | SnapshotSaveOutput> {
  const dir = snapshotDir(ctx, input);
  const src = await sourceMember(ctx, input.avoidMember);
  const t0 = Date.now();
  let started: (v: { path: string; revision?: number }) => void = () => {};
  const streaming = new Promise<{ path: string; revision?: number }>((resolve) => {
    started = resolve;
  });
  let release: () => void = () => {};
  const hold = input.hold
    ? new Promise<void>((resolve) => {
        const bound = setTimeout(resolve, MAX_HOLD_MS);
        bound.unref();
        release = () => {
          clearTimeout(bound);
          resolve();
        };
      })
    : undefined;
  // Not the step's signal: the stream outlives the step (it is bounded by its own idle timeout).
  const done = saveSnapshot({ pool: etcdPool(ctx), inventory: ctx.inventory, endpoint: src.endpoint, dir, verify: input.verify, log: (m) => ctx.log(m), onStreaming: started, ...(hold ? { hold } : {}) });
  done.catch(() => {}); // reported by the wait step (or lost with the run: it then reports nothing it could fix)
  inFlight(ctx).set(ctx.stepId, { input, member: src.name, t0, done, release: () => release() });
  const first = await Promise.race([streaming, done.then((r) => ({ finished: r }))]);
  if ('finished' in first) {
    // etcdctl took it (auth): no first-bytes signal, so it was waited for in full.
    return finish(ctx, input, src.name, t0, first.finished);
  }
  ctx.log(`snapshot from ${src.name} begun${first.revision !== undefined ? ` at revision ${first.revision}` : ''}: its content is fixed; it is written to ${first.path} ${input.hold ? 'once the snapshot-wait step comes (held until then: the steps between go first)' : 'while the next steps run'}`);
  return { background: true, path: first.path, member: src.name, ...(first.revision !== undefined ? { revision: first.revision } : {}), startedAt: new Date(t0).toISOString() };
}

function finish(ctx: ActionContext, input: SnapshotSaveInput, member: string, t0: number, saved: SaveResult): SnapshotSaveOutput {
  const retention = applyRetention(snapshotDir(ctx, input), ctx.inventory.name, policyOf(input), { protect: [saved.path] });
  for (const e of retention.expired) ctx.log(`retention: moved ${e.from} → ${e.to}`);
  const durationMs = Date.now() - t0;
  ctx.log(`snapshot ${saved.path}: revision ${saved.revision}, ${formatBytes(saved.size)}, sha256 ${saved.sha256.slice(0, 12)}…, ${formatDuration(durationMs)} from its start`);
  return { ...saved, member, durationMs, retention };
}

export const snapshotBeginAction: ImplementedAction = implement('etcd.snapshot-begin', {
  async plan(ctx, input) {
    return `${await snapshotSaveAction.plan!(ctx, input)}; go on once the member has begun to send it (its point in time is then fixed); a later etcd.snapshot-wait step finishes it`;
  },
  run: beginSnapshot,
});

export type SnapshotWaitInput = ActionInput<'etcd.snapshot-wait'>;

export type SnapshotWaitOutput = SnapshotSaveOutput & { takenAfter?: string };

export const snapshotWaitAction: ImplementedAction = implement('etcd.snapshot-wait', {
  async plan(_ctx, input) {
    return `wait until the snapshot step "${input.step}" began is written and verified (sha256 trailer, status, manifest); if it was cut short by a restart of the runner, take a new one`;
  },

  async run(ctx, input) {
    const rec = ctx.steps[input.step];
    if (!rec || rec.status !== 'succeeded') throw new StepError('invalid', `etcd.snapshot-wait: step "${input.step}" has not run (or was skipped)`);
    const started = rec.output as Partial<BackgroundStarted & SnapshotSaveOutput> | undefined;
    if (!started?.background) return started as SnapshotWaitOutput; // it finished in its own step
    const f = inFlight(ctx).get(input.step);
    if (f) {
      f.release();
      const saved = await f.done; // its failure (verification, stream) is this step's failure
      inFlight(ctx).delete(input.step);
      return finish(ctx, f.input, f.member, f.t0, saved);
    }
    // A resumed run: the stream died with the earlier process, or finished before it did.
    const path = started.path!;
    const manifest = existsSync(path) ? readManifest(path) : undefined;
    if (manifest && !('error' in manifest)) {
      ctx.log(`the snapshot begun at ${started.startedAt} was finished: ${path}`);
      return { ...manifest, path, member: started.member ?? '?', durationMs: 0, retention: { kept: [path], expired: [] } };
    }
    ctx.log(`the snapshot begun at ${started.startedAt} was cut short when the runner stopped (${path}.part is incomplete); taking a new one now, from after the steps in between`);
    const out = (await snapshotSaveAction.run(ctx, { verify: true, dir: dirname(path),  })) as SnapshotSaveOutput;
    return { ...out, takenAfter: `the steps after "${input.step}"` };
  },
});
