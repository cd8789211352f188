/**
 * The run journal: append-only JSON lines, fsync'd per record. It is the source of truth for a run; the xstate
 * snapshot beside it is a convenience. One process writes a journal at a time (the lock holder).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { JournalRecord, RunEvent } from '../events/types.ts';
import { UserError } from '../util/errors.ts';
import { mkdirp } from '../util/mkdirp.ts';

export interface JournalWriter {
  readonly records: readonly JournalRecord[];
  append(event: RunEvent): JournalRecord;
  close(): void;
  /**
   * Resolves when every record appended so far is durable; rejects (a StepError) when it cannot be, e.g. a
   * remote store's lock was taken over (fencing). Writers that write synchronously (the file) leave it out.
   */
  flush?(): Promise<void>;
}

export interface TornTail {
  line: number;
  bytes: number;
  /** Where the torn bytes were moved (nothing is lost). */
  savedTo?: string;
}

export interface JournalRead {
  records: JournalRecord[];
  torn?: TornTail;
}

/** Parse a journal file. A torn last line (a crash mid-write) is reported, not fatal; a bad line before the end is. */
export function readJournal(file: string): JournalRead {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read journal ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const records: JournalRecord[] = [];
  const lines = text.split('\n');
  const complete = text.endsWith('\n') ? lines.length - 1 : lines.length;
  let torn: TornTail | undefined;
  for (let i = 0; i < complete; i++) {
    const line = lines[i]!;
    const last = i === complete - 1;
    const endsClean = i < lines.length - 1; // followed by a newline
    if (line.trim() === '') continue;
    let rec: JournalRecord | undefined;
    try {
      rec = JSON.parse(line) as JournalRecord;
    } catch {
      rec = undefined;
    }
    if (!rec || typeof rec !== 'object' || typeof rec.type !== 'string' || typeof rec.seq !== 'number') {
      if (last) {
        torn = { line: i + 1, bytes: Buffer.byteLength(line) + (endsClean ? 1 : 0) };
        break;
      }
      throw new UserError(`${file}:${i + 1}:1: journal record is not valid JSON; the journal is damaged before its last line and cannot be resumed automatically`);
    }
    if (!endsClean) {
      // Valid JSON but no newline: the write may have been cut right after the last byte of JSON. Keep it.
    }
    records.push(rec);
  }
  return torn ? { records, torn } : { records };
}

function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  } catch { /* some filesystems refuse directory fsync */ }
}

/**
 * Open a journal for appending. When the file ends with a torn record, the torn bytes are copied to
 * `<file>.torn-<ts>` and cut off, so appends continue from the last complete record.
 */
export function openJournal(file: string, runId: string): JournalWriter & { torn?: TornTail } {
  mkdirp(path.dirname(file));
  let existing: JournalRecord[] = [];
  let torn: TornTail | undefined;
  if (fs.existsSync(file)) {
    const read = readJournal(file);
    existing = read.records;
    if (read.torn) {
      torn = read.torn;
      const size = fs.statSync(file).size;
      const keep = size - read.torn.bytes;
      const savedTo = `${file}.torn-${Date.now()}`;
      const fd = fs.openSync(file, 'r');
      try {
        const buf = Buffer.alloc(read.torn.bytes);
        fs.readSync(fd, buf, 0, buf.length, keep);
        fs.writeFileSync(savedTo, buf);
      } finally { fs.closeSync(fd); }
      fs.truncateSync(file, keep);
      torn.savedTo = savedTo;
    } else {
      // make sure a valid last record without newline gets one before we append
      const size = fs.statSync(file).size;
      if (size > 0) {
        const fd = fs.openSync(file, 'r');
        const b = Buffer.alloc(1);
        fs.readSync(fd, b, 0, 1, size - 1);
        fs.closeSync(fd);
        if (b[0] !== 0x0a) fs.appendFileSync(file, '\n');
      }
    }
  }
  const fd = fs.openSync(file, 'a');
  if (existing.length === 0) fsyncDir(path.dirname(file));
  const failpoint = failpointHook(parseFailpoint(process.env.RUNBOOK_FAILPOINT));
  return createWriter(existing, (line, rec) => {
    failpoint('before', rec);
    fs.writeSync(fd, line);
    fs.fsyncSync(fd);
    failpoint('after', rec);
  }, () => fs.closeSync(fd), runId, torn);
}

/**
 * Fault injection for crash tests, like etcd's failpoints. RUNBOOK_FAILPOINT kills this process with SIGKILL
 * around a journal write:
 *   journal-before:N / journal-after:N                 the N-th record this process appends
 *   journal-before:TYPE[:STEP[:K]] / journal-after:…   the K-th (default 1st) record of that type (and step)
 * "before" a `step.succeeded` is a crash after a step's effect and before its checkpoint.
 */
interface Failpoint {
  when: 'before' | 'after';
  n?: number;
  type?: string;
  stepId?: string;
  k: number;
}

export function parseFailpoint(spec: string | undefined): Failpoint | undefined {
  if (!spec) return undefined;
  let m = /^journal-(before|after):(\d+)$/.exec(spec);
  if (m) return { when: m[1] as 'before' | 'after', n: Number(m[2]), k: 1 };
  m = /^journal-(before|after):([a-z.]+)(?::([a-z0-9-]+))?(?::(\d+))?$/.exec(spec);
  if (m) return { when: m[1] as 'before' | 'after', type: m[2]!, ...(m[3] ? { stepId: m[3] } : {}), k: m[4] ? Number(m[4]) : 1 };
  return undefined;
}

export function failpointHook(fp: Failpoint | undefined): (phase: 'before' | 'after', rec: JournalRecord) => void {
  if (!fp) return () => {};
  let count = 0;
  let hit = false;
  return (phase, rec) => {
    if (phase === 'before') {
      if (fp.n !== undefined) count++;
      else if (rec.type === fp.type && (!fp.stepId || (rec as { stepId?: string }).stepId === fp.stepId)) count++;
      hit = fp.n !== undefined ? count === fp.n : count === fp.k;
      if (!hit) return;
      if (fp.when === 'before') process.kill(process.pid, 'SIGKILL');
    } else if (hit && fp.when === 'after') {
      process.kill(process.pid, 'SIGKILL');
    }
  };
}

/** A journal kept in memory only (plan / dry-run writes nothing to disk). */
export function memoryJournal(runId: string): JournalWriter {
  return createWriter([], () => {}, () => {}, runId, undefined);
}

function createWriter(
  existing: JournalRecord[],
  write: (line: string, rec: JournalRecord) => void,
  close: () => void,
  runId: string,
  torn: TornTail | undefined,
): JournalWriter & { torn?: TornTail } {
  const records = [...existing];
  let seq = records.length ? records[records.length - 1]!.seq : 0;
  let closed = false;
  const writer: JournalWriter & { torn?: TornTail } = {
    records,
    append(event) {
      if (closed) throw new Error('journal is closed');
      const rec = { seq: ++seq, ts: new Date().toISOString(), runId, ...event } as JournalRecord;
      write(`${JSON.stringify(rec)}\n`, rec);
      records.push(rec);
      return rec;
    },
    close() {
      if (!closed) { closed = true; close(); }
    },
  };
  if (torn) writer.torn = torn;
  return writer;
}

/** Write a file atomically: temp file, fsync, rename. */
export function writeFileAtomic(file: string, data: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
