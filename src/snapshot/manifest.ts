/**
 * The manifest beside every snapshot runbook saves: `<file>.json` with what a restore needs to trust the file
 * later (sha256 of the whole file, revision, size, when, which cluster). A snapshot without a manifest (taken by
 * hand) is still a candidate: it is then judged by its bytes alone and ordered by mtime.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../drivers/safe-fs.ts';

export interface SnapshotManifest {
  version: 1;
  /** File name (in the same directory). */
  file: string;
  cluster: string;
  /** sha256 of the whole file (as `sha256sum` prints it; the etcd trailer is part of the file). */
  sha256: string;
  revision: number;
  size: number;
  /** ISO time the snapshot was taken. */
  createdAt: string;
  /** The member it was streamed from. */
  endpoint?: string;
  /** How it was saved: the Maintenance/Snapshot stream read directly, or `etcdctl snapshot save` (clusters with auth). */
  via?: 'stream' | 'etcdctl';
  /** The etcd version the member it was saved from reported (Status): which tools may open and restore it. */
  etcdVersion?: string;
  /** Checked right after saving: sha256 trailer and `snapshot status`. */
  verified?: boolean;
}

export function manifestPath(snapshotFile: string): string {
  return `${snapshotFile}.json`;
}

/** The manifest of a snapshot: undefined when there is none, `{ error }` when it cannot be read. */
export function readManifest(snapshotFile: string): SnapshotManifest | { error: string } | undefined {
  let text: string;
  try {
    text = readFileSync(manifestPath(snapshotFile), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { error: `cannot read ${manifestPath(snapshotFile)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}` };
  }
  try {
    const m = JSON.parse(text) as Partial<SnapshotManifest>;
    if (m.version !== 1 || typeof m.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(m.sha256) || typeof m.size !== 'number') {
      return { error: `${manifestPath(snapshotFile)} is not a runbook snapshot manifest` };
    }
    return m as SnapshotManifest;
  } catch {
    return { error: `${manifestPath(snapshotFile)} is not valid JSON` };
  }
}

export function writeManifest(snapshotFile: string, m: SnapshotManifest): void {
  writeFileAtomic(manifestPath(snapshotFile), `${JSON.stringify(m, null, 2)}\n`, 0o644);
}

export function isManifest(m: ReturnType<typeof readManifest>): m is SnapshotManifest {
  return m !== undefined && !('error' in m);
}
