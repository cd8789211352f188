/**
 * Where delta segments live and how they are named, sealed and listed. In `<backup dir>/deltas/`:
 *   `<cluster>-<after>.open`      the segment being written (at most one per stream)
 *   `<cluster>-<after>.seg`       a sealed segment, never written again
 *   `<cluster>-<after>.seg.json`  its manifest: sha256 of the whole file, first/last revision and observed time
 * `<after>` is the revision the segment continues from, zero-padded so names sort in revision order. Sealing
 * writes the manifest first, then renames `.open` to `.seg`: a crash between the two leaves an `.open` whose
 * manifest already exists, which recovery finishes (same bytes, same sha256).
 */
import { existsSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../drivers/safe-fs.ts';
import { fsyncPath, sha256File } from '../hosts/local.ts';
import type { BaseSnapshotRef } from './record.ts';
import { scanSegment, type ScanResult } from './segment-reader.ts';

export const DELTAS_DIR = 'deltas';

export interface SegmentManifest {
  version: 1;
  file: string;
  cluster: string;
  base: BaseSnapshotRef;
  after: number;
  firstRevision: number;
  lastRevision: number;
  /** ISO times the stream observed the first and last revision. */
  firstObservedAt: string;
  lastObservedAt: string;
  records: number;
  size: number;
  sha256: string;
  sealedAt: string;
}

export interface SegmentEntry {
  path: string;
  /** Sealed (with a manifest) or still open (judged by its records alone). */
  state: 'sealed' | 'open';
  cluster: string;
  after: number;
  manifest?: SegmentManifest;
}

export function deltasDir(backupDir: string): string {
  return join(backupDir, DELTAS_DIR);
}

export function segmentName(cluster: string, after: number, ext: 'open' | 'seg'): string {
  return `${cluster}-${String(after).padStart(16, '0')}.${ext}`;
}

const NAME = /^(.+)-(\d{16})\.(open|seg)$/;

/** Sealed and open segments of a cluster, in revision order (sealed before open at the same `after`). */
export function listSegments(backupDir: string, cluster: string): SegmentEntry[] {
  const dir = deltasDir(backupDir);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: SegmentEntry[] = [];
  for (const name of names) {
    const m = NAME.exec(name);
    if (!m || m[1] !== cluster) continue;
    const path = join(dir, name);
    const entry: SegmentEntry = { path, state: m[3] === 'seg' ? 'sealed' : 'open', cluster, after: Number(m[2]) };
    if (entry.state === 'sealed') {
      const man = readSegmentManifest(path);
      if (man) entry.manifest = man;
    }
    out.push(entry);
  }
  return out.sort((a, b) => a.after - b.after || (a.state === b.state ? 0 : a.state === 'sealed' ? -1 : 1));
}

export function manifestOf(segmentPath: string): string {
  return `${segmentPath.replace(/\.open$/, '.seg')}.json`;
}

export function readSegmentManifest(segmentPath: string): SegmentManifest | undefined {
  try {
    const m = JSON.parse(readFileSync(manifestOf(segmentPath), 'utf8')) as SegmentManifest;
    return m.version === 1 && typeof m.sha256 === 'string' && typeof m.lastRevision === 'number' ? m : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Seal an `.open` segment whose bytes are all good records (the writer's, or recovery's cut copy): sha256, the
 * manifest, then the rename. Returns the manifest. A segment without records is not sealed (undefined).
 */
export async function sealSegment(openPath: string, scan?: ScanResult): Promise<SegmentManifest | undefined> {
  const s = scan ?? (await scanSegment(openPath));
  if (!s.header || s.records === 0 || s.lastRevision === undefined || s.firstRevision === undefined) return undefined;
  const sealed = openPath.replace(/\.open$/, '.seg');
  const manifest: SegmentManifest = {
    version: 1,
    file: sealed.split('/').at(-1)!,
    cluster: s.header.cluster,
    base: s.header.base,
    after: s.header.after,
    firstRevision: s.firstRevision,
    lastRevision: s.lastRevision,
    firstObservedAt: new Date(s.firstObservedAt!).toISOString(),
    lastObservedAt: new Date(s.lastObservedAt!).toISOString(),
    records: s.records,
    size: s.goodBytes,
    sha256: await sha256File(openPath),
    sealedAt: new Date().toISOString(),
  };
  writeFileAtomic(manifestOf(openPath), `${JSON.stringify(manifest, null, 2)}\n`, 0o644);
  if (existsSync(sealed)) throw new Error(`${sealed} exists already: not overwriting a sealed segment`);
  renameSync(openPath, sealed);
  fsyncPath(join(openPath, '..'));
  return manifest;
}
