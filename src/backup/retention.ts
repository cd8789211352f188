/**
 * Local retention of the continuous backups: full snapshots and delta segments, by whole chains. A chain is a
 * full snapshot and the deltas that carry it forward to the next one; a point in a chain can only be restored
 * from that chain's snapshot (or an older one), so retention expires chains from the oldest end, never a piece
 * out of the middle:
 *   - `keepChains`: keep the newest N chains;
 *   - `maxAgeMs`: a chain expires once it ended (the next full snapshot was taken) longer ago than this, so every
 *     point of the last `maxAgeMs` stays restorable.
 * The newest full snapshot is always kept, and so is every segment that still reaches past the oldest kept one
 * (a segment open or sealed across that snapshot's revision is needed to replay from it). What expires is MOVED,
 * never deleted, into `<dir>/expired/<UTC stamp>/` (snapshots with their manifests, segments with theirs): prune
 * that folder yourself. Copies off the host are not touched (a bucket's lifecycle rule, see README).
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { moveNoClobber, utcStamp } from '../drivers/safe-fs.ts';
import { manifestPath } from '../snapshot/manifest.ts';
import { EXPIRED_DIR, belongsTo, listSnapshots } from '../snapshot/list.ts';
import { listSegments, manifestOf } from './segments.ts';

export interface BackupRetention {
  keepChains?: number;
  maxAgeMs?: number;
}

export interface BackupRetentionResult {
  /** The folder this pass moved into (absent when nothing expired). */
  movedTo?: string;
  snapshots: string[];
  segments: string[];
}

/** Pure: the revision of the oldest full snapshot to keep, given the bases newest first (revision, createdAt ms). */
export function oldestKept(bases: { revision: number; createdAt: number }[], policy: BackupRetention, now: number): number | undefined {
  if (bases.length === 0) return undefined;
  let keep = bases.length;
  if (policy.keepChains !== undefined) keep = Math.min(keep, Math.max(1, policy.keepChains));
  if (policy.maxAgeMs !== undefined) {
    // Chain i ends when chain i-1 (the next newer) begins; it expires when that was longer ago than maxAge.
    for (let i = 1; i < keep; i++) {
      if (now - bases[i - 1]!.createdAt > policy.maxAgeMs) {
        keep = i;
        break;
      }
    }
  }
  return bases[keep - 1]!.revision;
}

/** Apply the policy to the cluster's backups in `dir` (full snapshots with a manifest, sealed segments). */
export function applyBackupRetention(dir: string, cluster: string, policy: BackupRetention, now = Date.now()): BackupRetentionResult {
  const result: BackupRetentionResult = { snapshots: [], segments: [] };
  if (policy.keepChains === undefined && policy.maxAgeMs === undefined) return result;
  const bases = listSnapshots(dir)
    .filter((e) => e.manifest && belongsTo(e, cluster))
    .sort((a, b) => b.manifest!.revision - a.manifest!.revision || b.createdAt - a.createdAt);
  const floor = oldestKept(bases.map((b) => ({ revision: b.manifest!.revision, createdAt: b.createdAt })), policy, now);
  if (floor === undefined) return result;
  const snapshots = bases.filter((b) => b.manifest!.revision < floor);
  // Sealed segments that end at or before the oldest kept snapshot: only a restore to a point before it reads them.
  const segments = listSegments(dir, cluster).filter((s) => s.state === 'sealed' && s.manifest && s.manifest.lastRevision <= floor);
  if (snapshots.length === 0 && segments.length === 0) return result;
  const to = join(dir, EXPIRED_DIR, utcStamp(new Date(now)));
  for (const s of snapshots) {
    moveNoClobber(s.path, join(to, s.name));
    if (existsSync(manifestPath(s.path))) moveNoClobber(manifestPath(s.path), manifestPath(join(to, s.name)));
    result.snapshots.push(s.name);
  }
  for (const s of segments) {
    const name = basename(s.path);
    // The segment first: a crash in between leaves a manifest without its segment (ignored by every reader), never
    // a sealed segment without its manifest.
    const manifest = manifestOf(s.path);
    moveNoClobber(s.path, join(to, 'deltas', name));
    if (existsSync(manifest)) moveNoClobber(manifest, join(to, 'deltas', basename(manifest)));
    result.segments.push(name);
  }
  result.movedTo = to;
  return result;
}
