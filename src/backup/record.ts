/**
 * One line of a delta segment: every event of ONE revision (a transaction is never split), the wall time the
 * stream observed it, and the granted TTL of leases first seen in it. A line is `<crc32 hex> <json>\n`: the
 * checksum lets a reader tell a complete record from a torn tail without trusting the file's length, and a
 * revision is durable exactly when its whole line (newline included) is on disk.
 *
 * Keys and values are base64 (etcd keys are bytes). 64-bit numbers (revisions, lease ids) travel as decimal
 * strings in etcd's API; revisions here fit a JS number (2^53) for any real cluster, lease ids do not: kept as
 * strings.
 */
import { crc32 } from 'node:zlib';

export interface DeltaEvent {
  /** put or delete */
  type: 'put' | 'delete';
  key: Buffer;
  /** put: the new value; delete: absent */
  value?: Buffer;
  /** put: the lease id (decimal string) the key is attached to, "0"/absent for none */
  lease?: string;
  /** delete: the value the key had (prev_kv), to show and to undo; absent when etcd no longer had it */
  prevValue?: Buffer;
}

export interface RevisionRecord {
  revision: number;
  /** Epoch ms when the stream received this revision (an upper bound of the commit time). */
  observedAt: number;
  events: DeltaEvent[];
  /** Lease id → granted TTL in seconds (-1: already gone when asked), for leases first seen here. */
  leases?: Record<string, number>;
}

interface WireEvent {
  d?: 1;
  k: string;
  v?: string;
  l?: string;
  p?: string;
}

interface WireRecord {
  r: number;
  t: number;
  e: WireEvent[];
  L?: Record<string, number>;
}

/** The first line of every segment: what it continues from, so an unsealed segment describes itself. */
export interface SegmentHeader {
  version: 1;
  cluster: string;
  /** The revision this segment continues from: its first record is the next revision the stream saw after it. */
  after: number;
  /** The full snapshot this chain of segments starts from. */
  base: BaseSnapshotRef;
  /** Epoch ms the segment was opened. */
  openedAt: number;
}

export interface BaseSnapshotRef {
  /** File name in the backup dir. */
  file: string;
  sha256: string;
  revision: number;
  createdAt: string;
}

function frame(json: Buffer): Buffer {
  const crc = crc32(json).toString(16).padStart(8, '0');
  return Buffer.concat([Buffer.from(`${crc} `), json, Buffer.from('\n')]);
}

function unframe(line: Buffer): unknown {
  if (line.length < 10 || line[8] !== 0x20) return undefined;
  const json = line.subarray(9);
  if (crc32(json).toString(16).padStart(8, '0') !== line.subarray(0, 8).toString('latin1')) return undefined;
  try {
    return JSON.parse(json.toString('utf8'));
  } catch {
    return undefined;
  }
}

export function encodeHeader(h: SegmentHeader): Buffer {
  return frame(Buffer.from(JSON.stringify({ h })));
}

export function decodeHeader(line: Buffer): SegmentHeader | undefined {
  const w = unframe(line) as { h?: SegmentHeader } | undefined;
  const h = w?.h;
  if (!h || h.version !== 1 || typeof h.after !== 'number' || typeof h.base?.sha256 !== 'string') return undefined;
  return h;
}

export function encodeRecord(rec: RevisionRecord): Buffer {
  const w: WireRecord = {
    r: rec.revision,
    t: rec.observedAt,
    e: rec.events.map((e) => {
      const o: WireEvent = { k: e.key.toString('base64') };
      if (e.type === 'delete') {
        o.d = 1;
        if (e.prevValue) o.p = e.prevValue.toString('base64');
      } else {
        o.v = (e.value ?? Buffer.alloc(0)).toString('base64');
        if (e.lease && e.lease !== '0') o.l = e.lease;
      }
      return o;
    }),
    ...(rec.leases && Object.keys(rec.leases).length ? { L: rec.leases } : {}),
  };
  return frame(Buffer.from(JSON.stringify(w)));
}

/** Decode one line (without its newline). Undefined when the checksum or the JSON is wrong (a torn or damaged line). */
export function decodeRecord(line: Buffer): RevisionRecord | undefined {
  const w = unframe(line) as WireRecord | undefined;
  if (!w || typeof w.r !== 'number' || typeof w.t !== 'number' || !Array.isArray(w.e)) return undefined;
  return {
    revision: w.r,
    observedAt: w.t,
    events: w.e.map((e) =>
      e.d
        ? { type: 'delete' as const, key: Buffer.from(e.k, 'base64'), ...(e.p !== undefined ? { prevValue: Buffer.from(e.p, 'base64') } : {}) }
        : { type: 'put' as const, key: Buffer.from(e.k, 'base64'), value: Buffer.from(e.v ?? '', 'base64'), ...(e.l ? { lease: e.l } : {}) },
    ),
    ...(w.L ? { leases: w.L } : {}),
  };
}
