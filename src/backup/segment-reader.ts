/**
 * Read a delta segment record by record, in constant memory (one record at a time, however big the file). A
 * reader stops at the first line that is incomplete (no newline) or fails its checksum: everything before it is
 * the segment's good prefix (`goodBytes`), the rest a torn tail. Records must have strictly increasing revisions;
 * a line that breaks the order also ends the good prefix (it cannot be trusted).
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { decodeHeader, decodeRecord, type RevisionRecord, type SegmentHeader } from './record.ts';

export interface ScanResult {
  /** The segment's first line; absent when even that is torn. */
  header?: SegmentHeader;
  records: number;
  firstRevision?: number;
  lastRevision?: number;
  firstObservedAt?: number;
  lastObservedAt?: number;
  /** Bytes of complete, valid records from the start. */
  goodBytes: number;
  /** Bytes after the good prefix (0 when the file ends cleanly); set by scanSegment. */
  tornBytes: number;
}

/**
 * Every complete record of the file, in order. `scan` (the returned summary) is filled in as records are read and
 * is final once the iteration ends.
 */
export async function* readRecords(file: string, scan: ScanResult = emptyScan(), opts: { after?: number; signal?: AbortSignal } = {}): AsyncGenerator<RevisionRecord> {
  let pending: Buffer[] = [];
  let pendingLen = 0;
  let offset = 0;
  let stopped = false;
  // A running stream may have sealed an open segment (renamed .open → .seg, same bytes) since it was listed.
  const path = !existsSync(file) && file.endsWith('.open') ? file.replace(/\.open$/, '.seg') : file;
  const stream = createReadStream(path, { highWaterMark: 256 * 1024, ...(opts.signal ? { signal: opts.signal } : {}) });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(0x0a, start);
        if (nl < 0) {
          pending.push(chunk.subarray(start));
          pendingLen += chunk.length - start;
          break;
        }
        const part = chunk.subarray(start, nl);
        const line = pending.length ? Buffer.concat([...pending, part]) : part;
        pending = [];
        pendingLen = 0;
        start = nl + 1;
        if (!scan.header) {
          const h = decodeHeader(line);
          if (!h) {
            stopped = true;
            break;
          }
          scan.header = h;
          offset += line.length + 1;
          scan.goodBytes = offset;
          continue;
        }
        const rec = decodeRecord(line);
        if (!rec || rec.revision <= scan.header.after || (scan.lastRevision !== undefined && rec.revision <= scan.lastRevision)) {
          stopped = true;
          break;
        }
        offset += line.length + 1;
        scan.records++;
        scan.firstRevision ??= rec.revision;
        scan.firstObservedAt ??= rec.observedAt;
        scan.lastRevision = rec.revision;
        scan.lastObservedAt = rec.observedAt;
        scan.goodBytes = offset;
        if (opts.after === undefined || rec.revision > opts.after) yield rec;
      }
      if (stopped) break;
    }
  } finally {
    stream.destroy();
  }
  void pendingLen;
}

export function emptyScan(): ScanResult {
  return { records: 0, goodBytes: 0, tornBytes: 0 };
}

/** Summary of a segment file without keeping its records. */
export async function scanSegment(file: string, signal?: AbortSignal): Promise<ScanResult> {
  const scan = emptyScan();
  for await (const _ of readRecords(file, scan, signal ? { signal } : {})) {
    // counted in scan
  }
  scan.tornBytes = statSync(file).size - scan.goodBytes;
  return scan;
}
