/**
 * Copies off the host (3-2-1): sealed delta segments and full snapshots, each with its manifest, copied to a
 * directory on another host (a Host: this machine or over ssh), each copy's sha256 computed THERE and compared
 * with the local one before it takes its final name. Never deletes, never overwrites: a copy goes to
 * `<name>.part-<stamp>` and is renamed only when verified; a file already there with another sha256 is reported as
 * a conflict and left alone. What was copied and verified is remembered in `deltas/copied-<target>.json`, so a
 * later pass does not hash everything again. Open segments are not copied (they are still growing): the RPO of
 * the copy is the segment age (`--segment-max-age`).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { utcStamp, writeFileAtomic } from '../drivers/safe-fs.ts';
import { sha256File } from '../hosts/local.ts';
import type { Host } from '../hosts/types.ts';
import { listSnapshots } from '../snapshot/list.ts';
import { manifestPath } from '../snapshot/manifest.ts';
import { StepError } from '../util/errors.ts';
import { DELTAS_DIR, deltasDir, listSegments, manifestOf } from './segments.ts';

export interface CopyTarget {
  host: Host;
  /** Directory on that host; segments go under `<dir>/deltas/`. */
  dir: string;
}

export interface CopyResult {
  copied: string[];
  already: string[];
  conflicts: { file: string; reason: string }[];
}

function ledgerPath(backupDir: string, t: CopyTarget): string {
  const id = createHash('sha256').update(`${t.host.label}\0${t.dir}`).digest('hex').slice(0, 12);
  return join(deltasDir(backupDir), `copied-${id}.json`);
}

function readLedger(file: string): Record<string, string> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}

/** The files to copy, data file before its manifest (a manifest never arrives without its file). */
function filesToCopy(backupDir: string, cluster: string): { local: string; rel: string; sha256?: string }[] {
  const out: { local: string; rel: string; sha256?: string }[] = [];
  for (const e of listSnapshots(backupDir)) {
    if (!e.manifest || e.manifest.cluster !== cluster) continue;
    out.push({ local: e.path, rel: e.name, sha256: e.manifest.sha256 }, { local: manifestPath(e.path), rel: `${e.name}.json` });
  }
  for (const s of listSegments(backupDir, cluster)) {
    if (s.state !== 'sealed' || !s.manifest) continue;
    out.push({ local: s.path, rel: join(DELTAS_DIR, basename(s.path)), sha256: s.manifest.sha256 }, { local: manifestOf(s.path), rel: join(DELTAS_DIR, basename(manifestOf(s.path))) });
  }
  return out;
}

export async function copyBackups(backupDir: string, cluster: string, t: CopyTarget, o: { signal?: AbortSignal; log?: (m: string) => void } = {}): Promise<CopyResult> {
  const ledgerFile = ledgerPath(backupDir, t);
  const ledger = readLedger(ledgerFile);
  const res: CopyResult = { copied: [], already: [], conflicts: [] };
  await t.host.mkdir(join(t.dir, DELTAS_DIR));
  for (const f of filesToCopy(backupDir, cluster)) {
    if (o.signal?.aborted) throw new StepError('cancelled', 'copy cancelled');
    const sha = f.sha256 ?? (await sha256File(f.local, o.signal));
    if (ledger[f.rel] === sha) continue;
    const remote = join(t.dir, f.rel);
    const there = await t.host.stat(remote);
    if (there) {
      const theirs = await t.host.sha256(remote);
      if (theirs === sha) {
        res.already.push(f.rel);
        ledger[f.rel] = sha;
      } else {
        res.conflicts.push({ file: f.rel, reason: `${t.host.label}:${remote} exists with sha256 ${theirs.slice(0, 12)}…, ours is ${sha.slice(0, 12)}… (left alone)` });
      }
      continue;
    }
    const part = `${remote}.part-${utcStamp()}`;
    await t.host.putFile(f.local, part, o.signal ? { signal: o.signal } : {});
    const theirs = await t.host.sha256(part);
    if (theirs !== sha) {
      throw new StepError('failed', `the copy of ${f.local} on ${t.host.label} (${part}) has sha256 ${theirs.slice(0, 12)}…, expected ${sha.slice(0, 12)}…; it is left there`, { hint: 'check that host\'s disk, then copy again' });
    }
    await t.host.fsync(part);
    await t.host.rename(part, remote);
    res.copied.push(f.rel);
    ledger[f.rel] = sha;
    o.log?.(`copied ${f.rel} to ${t.host.label}:${remote} (sha256 verified there)`);
  }
  writeFileAtomic(ledgerFile, `${JSON.stringify(ledger, null, 2)}\n`, 0o644);
  return res;
}
