/**
 * Build the snapshot a point-in-time restore restores, offline, never touching the cluster:
 *   1. choose the target (a revision, the last revision observed at or before a time, or the newest consistent
 *      point) and the newest full snapshot from which the delta log reaches it (chain.ts);
 *   2. check the base (sha256 against its manifest, the etcd sha256 trailer), copy it into a scratch dir;
 *   3. restore it into a scratch member on private loopback ports (scratch-member.ts), replay the deltas one
 *      revision per transaction up to the target (replay.ts), each revision checked;
 *   4. compact the scratch member at the target and defragment it (the replayed history would otherwise come back
 *      with the restore, up to a NOSPACE-sized db), then save a snapshot of the scratch member through the verified save path (sha256 trailer, `snapshot status`,
 *      manifest) and check its revision is the target.
 * The result is an ordinary verified snapshot that the existing restore path restores into every member. It is
 * written under the run's state dir, not the snapshot dirs, so no later `snapshot-select` takes it for a newer
 * backup of the cluster.
 */
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isAlreadyCompacted } from '../etcd/errors.ts';
import { compact, currentRevision } from '../etcd/kv.ts';
import { defragment } from '../etcd/maintenance.ts';
import { localHost, sha256File } from '../hosts/local.ts';
import type { Inventory } from '../inventory/types.ts';
import { localRestoreTool } from '../snapshot/etcd-tools.ts';
import { checkSnapshotFile } from '../snapshot/file-check.ts';
import { saveSnapshot } from '../snapshot/save.ts';
import { StepError } from '../util/errors.ts';
import { catalog, changesPerPrefix, chooseBase, newestPoint, revisionAt, timeOf, type Catalog, type Choice } from './chain.ts';
import { replay } from './replay.ts';
import { startScratchMember } from './scratch-member.ts';

export type TargetSpec = { revision: number } | { at: number } | { newest: true };

export interface TargetChoice {
  base: { path: string; sha256: string; revision: number; createdAt: string };
  revision: number;
  /** ISO time the stream observed the target revision (the base's time when it is the base itself). */
  observedAt?: string;
  segments: string[];
  /** Revisions to replay. */
  replayRevisions: number;
  /** Distinct keys changed after the target, per key prefix, up to the newest revision the backups hold: what a restore undoes. */
  changesAfter: Record<string, number>;
  newestRevision: number;
  problems: string[];
}

export interface BuiltTarget {
  path: string;
  sha256: string;
  revision: number;
  size: number;
  createdAt: string;
  choice: TargetChoice;
  replayed: { revisions: number; events: number; leasesGranted: number };
}

function describe(spec: TargetSpec): string {
  if ('revision' in spec) return `revision ${spec.revision}`;
  if ('at' in spec) return `the last revision observed at or before ${new Date(spec.at).toISOString()}`;
  return 'the newest consistent point';
}

async function resolve(c: Catalog, spec: TargetSpec, signal?: AbortSignal): Promise<Choice> {
  let choice: Choice | undefined;
  if ('newest' in spec) choice = newestPoint(c);
  else {
    let target: number | undefined;
    if ('revision' in spec) target = spec.revision;
    else target = (await revisionAt(c, spec.at, signal))?.revision;
    if (target === undefined) {
      throw new StepError('precondition', `no backup holds a revision observed at or before ${new Date((spec as { at: number }).at).toISOString()}`, { hint: 'choose a later time; `runbook backup status` shows what the backups hold' });
    }
    choice = chooseBase(c, target);
  }
  if (!choice) {
    const runs = c.runs.map((r) => `${r.from + 1}..${r.to}`).join(', ') || 'none';
    const bases = c.bases.map((b) => b.manifest!.revision).join(', ') || 'none';
    throw new StepError('precondition', `${describe(spec)} cannot be rebuilt from the backups: full snapshots at revisions ${bases}; delta log covers ${runs}`, {
      hint: 'a target inside a gap (history compacted before the stream read it) or before the oldest snapshot cannot be restored exactly',
    });
  }
  return choice;
}

/** Read-only: what a build would use and what it would undo. */
export async function chooseTarget(dirs: string[], cluster: string, spec: TargetSpec, signal?: AbortSignal): Promise<TargetChoice> {
  const c = await catalog(dirs, cluster, { verify: true, ...(signal ? { signal } : {}) });
  const ch = await resolve(c, spec, signal);
  const newest = Math.max(ch.target, ...c.runs.map((r) => r.to));
  const observed = await timeOf(c, ch.target, signal);
  return {
    base: { path: ch.base.path, sha256: ch.base.manifest!.sha256, revision: ch.baseRevision, createdAt: new Date(ch.base.createdAt).toISOString() },
    revision: ch.target,
    ...(observed !== undefined ? { observedAt: new Date(observed).toISOString() } : {}),
    segments: ch.spans.map((s) => s.path),
    replayRevisions: ch.target - ch.baseRevision,
    changesAfter: await changesPerPrefix(c, ch.target, newest, signal),
    newestRevision: newest,
    problems: c.problems,
  };
}

export async function buildTarget(o: { inventory: Inventory; dirs: string[]; spec: TargetSpec; workDir: string; outDir: string; signal?: AbortSignal; log?: (m: string) => void }): Promise<BuiltTarget> {
  const log = o.log ?? (() => {});
  const c = await catalog(o.dirs, o.inventory.name, { verify: true, ...(o.signal ? { signal: o.signal } : {}) });
  const ch = await resolve(c, o.spec, o.signal);
  const choice = await chooseTarget(o.dirs, o.inventory.name, { revision: ch.target }, o.signal);
  log(`target revision ${ch.target}${choice.observedAt ? ` (observed ${choice.observedAt})` : ''}: base ${ch.base.path} at revision ${ch.baseRevision}, ${ch.target - ch.baseRevision} revision(s) to replay from ${ch.spans.length} segment(s)`);

  const check = await checkSnapshotFile(ch.base.path, o.signal);
  if (check.sha256 !== ch.base.manifest!.sha256 || !check.trailerOk) {
    throw new StepError('failed', `the base snapshot ${ch.base.path} fails verification (${check.sha256 !== ch.base.manifest!.sha256 ? 'sha256 differs from its manifest' : check.problem}); move it aside and build again (an older base is then chosen)`);
  }
  await mkdir(o.workDir, { recursive: true });
  const copy = join(o.workDir, 'base.db');
  await copyFile(ch.base.path, copy);
  if ((await sha256File(copy, o.signal)) !== check.sha256) throw new StepError('failed', `the copy of ${ch.base.path} in ${o.workDir} differs from the original: check that disk`);

  const tool = await localRestoreTool(localHost, o.inventory.etcdBinDir, o.signal);
  const scratch = await startScratchMember({ snapshot: copy, workDir: o.workDir, tool, inventory: o.inventory, ...(o.signal ? { signal: o.signal } : {}) });
  try {
    const client = scratch.pool.member(scratch.endpoint);
    // An empty cluster's snapshot says revision 0 while the member starts at 1 (no key was ever written).
    const startRev = await currentRevision(scratch.pool, scratch.endpoint);
    if (startRev !== Math.max(1, ch.baseRevision)) {
      throw new StepError('failed', `the scratch member restored from ${ch.base.path} is at revision ${startRev}, its manifest says ${ch.baseRevision}: not a base to replay onto`);
    }
    if (ch.target < startRev) throw new StepError('precondition', `revision ${ch.target} is before the first revision a member can have (${startRev})`);
    const r = await replay(client, ch.spans, startRev, ch.target, { ...(o.signal ? { signal: o.signal } : {}), log });
    log(`replayed ${r.revisions} revision(s), ${r.events} event(s), ${r.leasesGranted} lease(s) granted`);
    // The replay left every replayed revision's history in the scratch db (after a NOSPACE incident: the whole
    // fill). Restored as is, the members would start at or over their quota and refuse the next write. History
    // before the target is never served after a restore (it is marked compacted, or on etcd 3.4 the target is
    // the newest revision), so it is compacted and the db defragmented before the save: the keyspace is unchanged.
    // At target - 1, not the target: compaction drops tombstones up to its revision, and the snapshot tools take
    // a snapshot's revision from the newest key revision in it, so a target that was a delete would read as older.
    if (ch.target - 1 > startRev) {
      try {
        await compact(scratch.pool, scratch.endpoint, ch.target - 1, true, { timeoutMs: 10 * 60_000, signal: o.signal });
      } catch (err) {
        if (!isAlreadyCompacted(err)) throw err;
      }
    }
    await defragment(scratch.pool, scratch.endpoint, { timeoutMs: 10 * 60_000, signal: o.signal });
    await mkdir(o.outDir, { recursive: true });
    const saved = await saveSnapshot({ pool: scratch.pool, inventory: scratch.inventory, endpoint: scratch.endpoint, dir: o.outDir, ...(o.signal ? { signal: o.signal } : {}), log });
    if (saved.revision !== ch.target) {
      throw new StepError('failed', `the rebuilt snapshot ${saved.path} is at revision ${saved.revision}, not the target ${ch.target}`);
    }
    log(`rebuilt snapshot ${basename(saved.path)} at revision ${saved.revision}, sha256 ${saved.sha256.slice(0, 12)}…`);
    return { path: saved.path, sha256: saved.sha256, revision: saved.revision, size: saved.size, createdAt: saved.createdAt, choice, replayed: { revisions: r.revisions, events: r.events, leasesGranted: r.leasesGranted } };
  } finally {
    await scratch.stop();
    // The scratch member's data and the base copy are our own throwaway files (the result is in outDir).
    await rm(o.workDir, { recursive: true, force: true });
  }
}
