/**
 * What the members say they spent, from their zap JSON logs: the defrag and the scheduled compaction (wordings of
 * 3.4 and 3.5 in src/etcd/versions.ts LOG_MESSAGES; 3.5 says when a defrag starts and ends, 3.4 gives `took`).
 * Read from a mark taken before a trial, so each trial sees only its own lines.
 */
import { openSync, readSync, closeSync, statSync } from 'node:fs';
import { LOG_MESSAGES } from '../../src/etcd/versions.ts';

const has = (list: readonly string[], msg: string | undefined): boolean => msg !== undefined && list.includes(msg);

export type LogMarks = Map<string, number>;

export function markLogs(files: string[]): LogMarks {
  return new Map(files.map((f) => [f, safeSize(f)]));
}

function safeSize(f: string): number {
  try {
    return statSync(f).size;
  } catch {
    return 0;
  }
}

function readFrom(file: string, offset: number): string {
  const size = safeSize(file);
  if (size <= offset) return '';
  const buf = Buffer.alloc(size - offset);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buf, 0, buf.length, offset);
  } finally {
    closeSync(fd);
  }
  return buf.toString('utf8');
}

/** Go duration text ("138.770816ms", "1.2s", "850µs") → milliseconds. */
export function goDurationMs(text: string): number {
  let total = 0;
  for (const m of text.matchAll(/([\d.]+)(h|ms|m|s|µs|us|ns)/g)) {
    const v = Number(m[1]);
    total += m[2] === 'h' ? v * 3_600_000 : m[2] === 'm' ? v * 60_000 : m[2] === 's' ? v * 1000 : m[2] === 'ms' ? v : m[2] === 'ns' ? v / 1e6 : v / 1000;
  }
  return total;
}

export interface ServerTimes {
  /** Per member file: defrag durations in order. */
  defragMs: Map<string, number[]>;
  compactMs: Map<string, number[]>;
  /**
   * Per member file: how long before its defrag started the member finished its own (physical) compaction;
   * negative when the defrag started while the member was still compacting.
   */
  compactionLeadMs: Map<string, number>;
}

export function serverTimes(marks: LogMarks): ServerTimes {
  const defragMs = new Map<string, number[]>();
  const compactMs = new Map<string, number[]>();
  const compactionLeadMs = new Map<string, number>();
  for (const [file, offset] of marks) {
    const d: number[] = [];
    const c: number[] = [];
    let compactedAt: number | undefined;
    let defragAt: number | undefined;
    let thisDefragAt: number | undefined;
    for (const line of readFrom(file, offset).split('\n')) {
      if (!line.includes('"took"') && !line.includes('defragment')) continue;
      let rec: { msg?: string; took?: string; ts?: string };
      try {
        rec = JSON.parse(line) as { msg?: string; took?: string; ts?: string };
      } catch {
        continue;
      }
      const ts = rec.ts ? Date.parse(rec.ts) : undefined;
      if (has(LOG_MESSAGES.defragDone, rec.msg)) {
        if (rec.took) d.push(goDurationMs(rec.took));
        else if (ts !== undefined && thisDefragAt !== undefined) d.push(ts - thisDefragAt);
        thisDefragAt = undefined;
      }
      if (has(LOG_MESSAGES.compactionDone, rec.msg) && rec.took) {
        c.push(goDurationMs(rec.took));
        compactedAt ??= ts;
      }
      if (has(LOG_MESSAGES.defragStarted, rec.msg)) {
        defragAt ??= ts;
        thisDefragAt ??= ts;
      }
    }
    defragMs.set(file, d);
    compactMs.set(file, c);
    if (compactedAt !== undefined && defragAt !== undefined) compactionLeadMs.set(file, defragAt - compactedAt);
  }
  return { defragMs, compactMs, compactionLeadMs };
}
