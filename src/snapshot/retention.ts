/**
 * Retention of saved snapshots: keep the newest `keepLast`, and none older than `maxAge`; the snapshot just
 * saved is always kept. Expired snapshots are MOVED (with their manifests) into `<dir>/expired/`, never deleted:
 * pruning that folder is left to the operator. Only this cluster's snapshots are considered (by manifest, else
 * by the file name runbook gives them), so a directory shared by several clusters is safe.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freshPath, moveNoClobber } from '../drivers/safe-fs.ts';
import { manifestPath } from './manifest.ts';
import { EXPIRED_DIR, belongsTo, listSnapshots, sortNewestFirst, type SnapshotEntry } from './list.ts';

export interface RetentionPolicy {
  keepLast?: number;
  maxAgeMs?: number;
}

export interface RetentionPlan<T> {
  keep: T[];
  expire: T[];
}

/** Pure: which entries a policy keeps and which expire. `protect` (paths) are always kept. */
export function planRetention<T extends { path: string; createdAt: number }>(entries: T[], policy: RetentionPolicy, now: number, protect: string[] = []): RetentionPlan<T> {
  const keep: T[] = [];
  const expire: T[] = [];
  sortNewestFirst(entries).forEach((e, i) => {
    const tooMany = policy.keepLast !== undefined && i >= policy.keepLast;
    const tooOld = policy.maxAgeMs !== undefined && now - e.createdAt > policy.maxAgeMs;
    if ((tooMany || tooOld) && !protect.includes(e.path)) expire.push(e);
    else keep.push(e);
  });
  return { keep, expire };
}

export interface RetentionResult {
  kept: string[];
  expired: { from: string; to: string }[];
}

/** Apply a policy to the cluster's snapshots in `dir`: expired ones (and their manifests) move into `dir/expired/`. */
export function applyRetention(dir: string, cluster: string, policy: RetentionPolicy, opts: { now?: number; protect?: string[] } = {}): RetentionResult {
  if (policy.keepLast === undefined && policy.maxAgeMs === undefined) {
    return { kept: listSnapshots(dir).filter((e) => belongsTo(e, cluster)).map((e) => e.path), expired: [] };
  }
  const mine = listSnapshots(dir).filter((e) => belongsTo(e, cluster));
  const plan = planRetention<SnapshotEntry>(mine, policy, opts.now ?? Date.now(), opts.protect ?? []);
  const expiredDir = join(dir, EXPIRED_DIR);
  const expired: { from: string; to: string }[] = [];
  for (const e of plan.expire) {
    const to = freshPath(join(expiredDir, e.name.replace(/\.db$/, '')), '.db');
    moveNoClobber(e.path, to);
    if (existsSync(manifestPath(e.path))) moveNoClobber(manifestPath(e.path), manifestPath(to));
    expired.push({ from: e.path, to });
  }
  return { kept: plan.keep.map((e) => e.path), expired };
}
