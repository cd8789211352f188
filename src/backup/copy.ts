/**
 * Copies off the host (3-2-1): sealed delta segments and full snapshots, each with its manifest, copied to a
 * directory on another host (a Host, over ssh) or to a bucket (copy-s3.ts), each copy's sha256 computed on the
 * far side and compared with the local one before the copy counts. Never deletes, never overwrites: a copy goes to
 * `<name>.part-<stamp>` and is renamed only when verified; a file already there with another sha256 is reported as
 * a conflict and left alone. What was copied and verified is remembered in `deltas/copied-<target>.json`, so a
 * later pass does not hash everything again (the ledger is keyed by the destination's label). Open segments are not copied (they are still growing): the RPO of
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

/** Where copies go: a dir on a host (this file), or a bucket (copy-s3.ts). */
export interface CopyDestination {
  /** For messages and the ledger: no secrets. */
  readonly label: string;
  /** The sha256 of what is already at `rel`, or undefined when nothing is. */
  existing(rel: string, signal?: AbortSignal): Promise<string | undefined>;
  /** Put the local file at `rel` (absent before), verified on the far side against `sha256`; throws when it differs. */
  put(local: string, rel: string, sha256: string, signal?: AbortSignal): Promise<void>;
}

/** A dir on a Host: copied to `<rel>.part-<stamp>`, its sha256 computed there, then renamed (never overwrites). */
export function hostDestination(host: Host, dir: string): CopyDestination {
  let madeDirs = false;
  return {
    label: `${host.label}:${dir}`,
    async existing(rel) {
      const remote = join(dir, rel);
      return (await host.stat(remote)) ? host.sha256(remote) : undefined;
    },
    async put(local, rel, sha, signal) {
      if (!madeDirs) {
        await host.mkdir(join(dir, DELTAS_DIR));
        madeDirs = true;
      }
      const remote = join(dir, rel);
      const part = `${remote}.part-${utcStamp()}`;
      await host.putFile(local, part, signal ? { signal } : {});
      const theirs = await host.sha256(part);
      if (theirs !== sha) {
        throw new StepError('failed', `the copy of ${local} on ${host.label} (${part}) has sha256 ${theirs.slice(0, 12)}…, expected ${sha.slice(0, 12)}…; it is left there`, { hint: "check that host's disk, then copy again" });
      }
      await host.fsync(part);
      await host.rename(part, remote);
    },
  };
}

export interface CopyResult {
  copied: string[];
  already: string[];
  conflicts: { file: string; reason: string }[];
}

function ledgerPath(backupDir: string, d: CopyDestination): string {
  const id = createHash('sha256').update(d.label).digest('hex').slice(0, 12);
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

export async function copyBackups(backupDir: string, cluster: string, d: CopyDestination, o: { signal?: AbortSignal; log?: (m: string) => void } = {}): Promise<CopyResult> {
  const ledgerFile = ledgerPath(backupDir, d);
  const ledger = readLedger(ledgerFile);
  const res: CopyResult = { copied: [], already: [], conflicts: [] };
  try {
    for (const f of filesToCopy(backupDir, cluster)) {
      if (o.signal?.aborted) throw new StepError('cancelled', 'copy cancelled');
      const sha = f.sha256 ?? (await sha256File(f.local, o.signal));
      if (ledger[f.rel] === sha) continue;
      const theirs = await d.existing(f.rel, o.signal);
      if (theirs !== undefined) {
        if (theirs === sha) {
          res.already.push(f.rel);
          ledger[f.rel] = sha;
        } else {
          res.conflicts.push({ file: f.rel, reason: `${d.label}: ${f.rel} exists with sha256 ${theirs.slice(0, 12)}…, ours is ${sha.slice(0, 12)}… (left alone)` });
        }
        continue;
      }
      await d.put(f.local, f.rel, sha, o.signal);
      res.copied.push(f.rel);
      ledger[f.rel] = sha;
      o.log?.(`copied ${f.rel} to ${d.label} (sha256 verified there)`);
    }
  } finally {
    writeFileAtomic(ledgerFile, `${JSON.stringify(ledger, null, 2)}\n`, 0o644);
  }
  return res;
}
