/**
 * What a (re)started stream does with the segments a previous run left open: keep every complete record, cut a
 * torn tail, seal. Nothing is deleted: a segment with a torn tail is moved aside whole (`.torn-<stamp>`) and its
 * good prefix copied to a fresh `.open` that is then sealed; an `.open` with no record at all is moved aside
 * (`.empty-<stamp>`).
 */
import { closeSync, fdatasyncSync, openSync, readSync, renameSync, writeSync } from 'node:fs';
import { freshPath, fsyncDir, utcStamp } from '../drivers/safe-fs.ts';
import { scanSegment } from './segment-reader.ts';
import { deltasDir, listSegments, sealSegment, type SegmentManifest } from './segments.ts';

export interface RecoveryResult {
  sealed: SegmentManifest[];
  /** Files moved aside, with why. */
  movedAside: { from: string; to: string; reason: string }[];
}

/** Copy the first `bytes` of `from` into a new file `to` (which must not exist), fsync'd. Constant memory. */
function copyPrefix(from: string, to: string, bytes: number): void {
  const src = openSync(from, 'r');
  const dst = openSync(to, 'wx', 0o640);
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024);
    let pos = 0;
    while (pos < bytes) {
      const n = readSync(src, buf, 0, Math.min(buf.length, bytes - pos), pos);
      if (n <= 0) break;
      let off = 0;
      while (off < n) off += writeSync(dst, buf, off, n - off);
      pos += n;
    }
    fdatasyncSync(dst);
  } finally {
    closeSync(src);
    closeSync(dst);
  }
}

export async function recoverOpenSegments(backupDir: string, cluster: string, log: (m: string) => void = () => {}): Promise<RecoveryResult> {
  const out: RecoveryResult = { sealed: [], movedAside: [] };
  for (const seg of listSegments(backupDir, cluster).filter((s) => s.state === 'open')) {
    const scan = await scanSegment(seg.path);
    if (scan.tornBytes > 0) {
      const aside = freshPath(`${seg.path}.torn-${utcStamp()}`);
      renameSync(seg.path, aside);
      out.movedAside.push({ from: seg.path, to: aside, reason: `${scan.tornBytes} byte(s) after the last complete record (revision ${scan.lastRevision ?? scan.header?.after ?? '?'})` });
      log(`${seg.path}: cut a torn tail of ${scan.tornBytes} byte(s) after revision ${scan.lastRevision ?? scan.header?.after ?? '?'}; the whole file is kept at ${aside}`);
      if (scan.records > 0) copyPrefix(aside, seg.path, scan.goodBytes);
      fsyncDir(deltasDir(backupDir));
    }
    if (scan.records > 0) {
      const m = await sealSegment(seg.path, { ...scan, tornBytes: 0 });
      if (m) {
        out.sealed.push(m);
        log(`sealed ${m.file} left open by an earlier run: revisions ${m.firstRevision}..${m.lastRevision}`);
      }
    } else if (scan.tornBytes === 0) {
      const aside = freshPath(`${seg.path}.empty-${utcStamp()}`);
      renameSync(seg.path, aside);
      out.movedAside.push({ from: seg.path, to: aside, reason: 'no record in it' });
    }
  }
  return out;
}
