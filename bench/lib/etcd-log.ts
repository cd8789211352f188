/**
 * What the members say they spent: etcd 3.4 logs "defragmented … took" and "finished scheduled compaction … took"
 * (zap JSON). Read from a mark taken before a trial, so each trial sees only its own lines.
 */
import { openSync, readSync, closeSync, statSync } from 'node:fs';

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
    for (const line of readFrom(file, offset).split('\n')) {
      if (!line.includes('"took"') && !line.includes('starting defragment')) continue;
      let rec: { msg?: string; took?: string; ts?: string };
      try {
        rec = JSON.parse(line) as { msg?: string; took?: string; ts?: string };
      } catch {
        continue;
      }
      if (rec.msg === 'defragmented' && rec.took) d.push(goDurationMs(rec.took));
      if (rec.msg === 'finished scheduled compaction' && rec.took) {
        c.push(goDurationMs(rec.took));
        compactedAt ??= rec.ts ? Date.parse(rec.ts) : undefined;
      }
      if (rec.msg === 'starting defragment') defragAt ??= rec.ts ? Date.parse(rec.ts) : undefined;
    }
    defragMs.set(file, d);
    compactMs.set(file, c);
    if (compactedAt !== undefined && defragAt !== undefined) compactionLeadMs.set(file, defragAt - compactedAt);
  }
  return { defragMs, compactMs, compactionLeadMs };
}
