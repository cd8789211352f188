/**
 * Choose the snapshot to restore: the newest candidate that passes every check, older ones as fallbacks. Each
 * candidate is checked: the sha256 trailer, the sha256 and size its manifest recorded, `snapshot status`, and
 * (trialRestore) a trial restore on a COPY in a throwaway temp dir, removed afterwards (ours, not user data).
 * The original is only ever read. Rejected candidates are reported with the reason.
 */
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localHost } from '../hosts/local.ts';
import { StepError, messageOf } from '../util/errors.ts';
import { toolFitsCluster } from '../etcd/versions.ts';
import { chooseSnapshotTool, snapshotStatus, toolDirs, trialRestore, type RestoreTool } from './etcd-tools.ts';
import { checkSnapshotFile } from './file-check.ts';
import { rememberSha256, statForMemo } from './hash-memo.ts';
import { listSnapshots, sortNewestFirst, type SnapshotEntry } from './list.ts';

export interface Rejected {
  path: string;
  reason: string;
}

export interface SelectedSnapshot {
  path: string;
  sha256: string;
  revision: number;
  size: number;
  /** ISO time: manifest createdAt, else the file's mtime. */
  createdAt: string;
  /** The etcd version its manifest recorded (the cluster's when it was saved), when it has one. */
  etcdVersion?: string;
  rejected: Rejected[];
  /** Candidates found (before maxCandidates). */
  candidates: number;
}

export interface SelectOptions {
  dirs: string[];
  /** Refuse snapshots whose manifest names another cluster. */
  cluster?: string;
  trialRestore?: boolean;
  maxCandidates?: number;
  etcdBinDir?: string;
  /** The cluster's etcd version when known (chooses the tool that checks the candidates). */
  clusterVersion?: string;
  /** Where the throwaway copies go (default the OS temp dir). */
  tmpRoot?: string;
  signal?: AbortSignal;
  log?: (message: string) => void;
}

export type CandidateCheck = { ok: true; sha256: string; revision: number; size: number } | { ok: false; reason: string };

/** Every snapshot in the dirs, newest first (a dir listed twice counts once). */
export function candidates(dirs: string[]): SnapshotEntry[] {
  return sortNewestFirst([...new Set(dirs)].flatMap((d) => listSnapshots(d)));
}

/** Check one candidate on a copy. Never throws for a bad snapshot (only for cancellation / missing tools). */
export async function checkCandidate(e: SnapshotEntry, tool: RestoreTool, o: Pick<SelectOptions, 'cluster' | 'trialRestore' | 'tmpRoot' | 'signal'>): Promise<CandidateCheck> {
  if (e.manifestError) return { ok: false, reason: e.manifestError };
  if (o.cluster && e.manifest && e.manifest.cluster !== o.cluster) {
    return { ok: false, reason: `its manifest says it is a snapshot of cluster ${JSON.stringify(e.manifest.cluster)}, not ${JSON.stringify(o.cluster)}` };
  }
  // Without a trial restore nothing writes: the etcd tools open the file read-only for `snapshot status`
  // (O_RDONLY, checked on 3.4 and 3.5), so the original is checked in place and no copy is paid for. A trial
  // restore works on a copy in a throwaway dir.
  const trial = o.trialRestore !== false;
  const tmp = trial ? await mkdtemp(join(o.tmpRoot ?? tmpdir(), 'runbook-snapcheck-')) : undefined;
  let status: ReturnType<typeof snapshotStatus> | undefined;
  try {
    let copy = e.path;
    const before = statForMemo(e.path);
    if (tmp) {
      copy = join(tmp, 'snapshot.db');
      try {
        await copyFile(e.path, copy);
      } catch (err) {
        return { ok: false, reason: `cannot read it: ${messageOf(err)}` };
      }
    } else if (!before) {
      return { ok: false, reason: 'cannot read it: it is gone' };
    }
    // `snapshot status` (the tool reads the db) alongside the sha256 read: two cores, one pass of the page cache.
    // Its answer is looked at only once the file's own checks have passed.
    status = snapshotStatus(localHost, tool, copy, o.signal);
    status.catch(() => {});
    let file;
    try {
      file = await checkSnapshotFile(copy, o.signal);
    } catch (err) {
      if (err instanceof StepError) throw err;
      return { ok: false, reason: `cannot read it: ${messageOf(err)}` };
    }
    if (!tmp && before) rememberSha256(e.path, before, file.sha256);
    if (e.manifest) {
      if (e.manifest.size !== file.size) return { ok: false, reason: `it is ${file.size} bytes but its manifest recorded ${e.manifest.size}: truncated or replaced` };
      if (e.manifest.sha256 !== file.sha256) return { ok: false, reason: `its sha256 ${file.sha256.slice(0, 12)}… differs from the one its manifest recorded (${e.manifest.sha256.slice(0, 12)}…): damaged or replaced` };
    }
    if (!file.trailerOk) return { ok: false, reason: file.problem ?? 'its sha256 trailer does not match' };
    const saved = e.manifest?.etcdVersion;
    if (saved) {
      const fit = toolFitsCluster(tool.kind, tool.toolVersion ?? '0.0.0', saved);
      if (!fit.ok) return { ok: false, reason: `it is a snapshot of etcd ${saved} and the tool here cannot check it: ${fit.why}` };
    }
    const st = await status;
    if (!st.ok) return { ok: false, reason: st.problem };
    if (tmp) {
      const r = await trialRestore(localHost, tool, copy, join(tmp, 'trial.etcd'), o.signal);
      if (!r.ok) return { ok: false, reason: r.problem };
    }
    return { ok: true, sha256: file.sha256, revision: st.status.revision, size: file.size };
  } finally {
    await status?.catch(() => {}); // no tool left running on a file once its answer is no longer wanted
    // The copy and the trial data dir are our own throwaway files.
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

/** The newest snapshot that passes every check; fails (precondition) when none does, listing every reason. */
export async function selectSnapshot(o: SelectOptions): Promise<SelectedSnapshot> {
  const log = o.log ?? (() => {});
  const all = candidates(o.dirs);
  if (all.length === 0) {
    throw new StepError('precondition', `no snapshot (*.db) found in ${o.dirs.join(', ') || '(no snapshot dirs)'}`, {
      hint: 'give snapshots.dirs in the inventory (or dirs in the step), or copy a snapshot there',
    });
  }
  const { tool } = await chooseSnapshotTool(localHost, toolDirs(undefined, { ...(o.etcdBinDir ? { etcdBinDir: o.etcdBinDir } : {}) }), {
    purpose: 'check',
    ...(o.clusterVersion ? { clusterVersion: o.clusterVersion } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  log(`checking candidates with ${tool.kind} ${tool.toolVersion ?? '?'} (${tool.path})${o.clusterVersion ? ` for etcd ${o.clusterVersion}` : ''}`);
  const rejected: Rejected[] = [];
  for (const e of all.slice(0, o.maxCandidates ?? 20)) {
    if (o.signal?.aborted) throw new StepError('cancelled', 'snapshot selection cancelled');
    const r = await checkCandidate(e, tool, o);
    if (r.ok) {
      log(`chose ${e.path} (revision ${r.revision}, ${r.size} bytes, sha256 ${r.sha256.slice(0, 12)}…)${rejected.length ? ` after rejecting ${rejected.length} newer` : ''}`);
      const etcdVersion = e.manifest?.etcdVersion;
      return { path: e.path, sha256: r.sha256, revision: r.revision, size: r.size, createdAt: new Date(e.createdAt).toISOString(), ...(etcdVersion ? { etcdVersion } : {}), rejected, candidates: all.length };
    }
    log(`rejected ${e.path}: ${r.reason}`);
    rejected.push({ path: e.path, reason: r.reason });
  }
  const skipped = all.length - rejected.length;
  throw new StepError('precondition', `no usable snapshot: ${rejected.map((r) => `${r.path}: ${r.reason}`).join('; ')}${skipped > 0 ? ` (${skipped} older not checked: maxCandidates)` : ''}`, {
    hint: 'find a good snapshot (another backup location) and put it in a snapshot dir, then resume',
  });
}
