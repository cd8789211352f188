/**
 * The snapshots in a directory (this machine): `*.db` files (never `*.part`, never the `expired/` folder),
 * each with its manifest when it has one, newest first (manifest createdAt, else mtime).
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isManifest, readManifest, type SnapshotManifest } from './manifest.ts';

export interface SnapshotEntry {
  path: string;
  name: string;
  dir: string;
  size: number;
  /** Epoch ms: manifest createdAt, else the file's mtime. */
  createdAt: number;
  manifest?: SnapshotManifest;
  /** The manifest exists but cannot be used. */
  manifestError?: string;
}

export const EXPIRED_DIR = 'expired';

export function listSnapshots(dir: string): SnapshotEntry[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: SnapshotEntry[] = [];
  for (const name of names) {
    if (!name.endsWith('.db') || name.startsWith('.')) continue;
    const path = join(dir, name);
    let st;
    try {
      st = statSync(path);
    } catch {
      continue;
    }
    if (!st.isFile()) continue;
    const m = readManifest(path);
    const entry: SnapshotEntry = { path, name, dir, size: st.size, createdAt: st.mtimeMs };
    if (isManifest(m)) {
      entry.manifest = m;
      const t = Date.parse(m.createdAt);
      if (Number.isFinite(t)) entry.createdAt = t;
    } else if (m) {
      entry.manifestError = m.error;
    }
    out.push(entry);
  }
  return sortNewestFirst(out);
}

export function sortNewestFirst<T extends { createdAt: number; path: string }>(entries: T[]): T[] {
  return [...entries].sort((a, b) => b.createdAt - a.createdAt || (a.path < b.path ? 1 : a.path > b.path ? -1 : 0));
}

/** Is this snapshot of that cluster? By its manifest, else by the file name runbook gives it (`<cluster>-<stamp>.db`). */
export function belongsTo(e: SnapshotEntry, cluster: string): boolean {
  if (e.manifest) return e.manifest.cluster === cluster;
  return new RegExp(`^${cluster.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-\\d{8}T\\d{6}Z(-\\d+)?\\.db$`).test(e.name);
}
