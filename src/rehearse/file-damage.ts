/**
 * Damage a file the way disks and interrupted copies do, for fault injection (`rehearse --fault`) and tests that
 * must see a damaged member or snapshot refused.
 */
import { closeSync, ftruncateSync, openSync, readSync, statSync, writeSync } from 'node:fs';

/**
 * How corruptFile damages a file. Each one changes bytes etcd reads, sized by the data in use (etcd 3.5 preallocates
 * its db file in large steps and every WAL segment to 64 MB, so a cut sized by the file size would remove only zeros):
 * - `bbolt-meta`: zero both bbolt meta pages of a db file (page size read from the file): etcd refuses to open it
 *   ("invalid database" / "failed to open database", a panic) on 3.4 and 3.5.
 * - `wal-record`: flip one byte inside a WAL record in the middle of the used part of a segment (never the last
 *   record, and never where etcd would take it for a torn write and repair by cutting the tail): etcd stops with a
 *   crc mismatch on replay.
 * - `truncate-half`, `truncate-tail` (16 bytes), `flip-byte` (the middle byte): for snapshot files and other dense
 *   files; a cut that would remove only zero bytes (preallocated space) throws instead of silently doing nothing.
 */
export type FileDamage = 'bbolt-meta' | 'wal-record' | 'truncate-half' | 'truncate-tail' | 'flip-byte';

/** What corruptFile did, in bytes: for a test to say (and assert) what changed. */
export interface DamageDone {
  how: FileDamage;
  /** First byte changed (or the new length, for a cut). */
  offset: number;
  /** Bytes zeroed, flipped or cut. */
  bytes: number;
}

const BOLT_MAGIC = 0xed0cdaed;
const WAL_SECTOR = 512;

function readAt(fd: number, offset: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  const n = readSync(fd, b, 0, length, offset);
  return b.subarray(0, n);
}

function allZero(fd: number, from: number, to: number): boolean {
  for (let at = from; at < to; at += 1 << 20) {
    const chunk = readAt(fd, at, Math.min(1 << 20, to - at));
    if (chunk.some((x) => x !== 0)) return false;
  }
  return true;
}

/** bbolt: page header (16 bytes) then meta: magic u32, version u32, pageSize u32 (little endian). */
function zeroBoltMeta(fd: number, path: string): DamageDone {
  const head = readAt(fd, 0, 32);
  if (head.length < 32 || head.readUInt32LE(16) !== BOLT_MAGIC) throw new Error(`corruptFile: ${path} is not a bbolt file (no meta magic on page 0)`);
  const pageSize = head.readUInt32LE(24);
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) throw new Error(`corruptFile: ${path}: implausible bbolt page size ${pageSize}`);
  const zeros = Buffer.alloc(2 * pageSize);
  writeSync(fd, zeros, 0, zeros.length, 0);
  return { how: 'bbolt-meta', offset: 0, bytes: zeros.length };
}

/**
 * etcd's WAL framing (server/storage/wal/encoder.go): a little-endian u64 length field, low 56 bits the record
 * length, and when the top bit is set bits 56-58 the padding to 8 bytes; a zero length field ends the used part.
 */
function walRecords(fd: number, size: number): { start: number; length: number }[] {
  const records: { start: number; length: number }[] = [];
  for (let at = 0; at + 8 <= size; ) {
    const field = readAt(fd, at, 8).readBigUInt64LE(0);
    if (field === 0n) break;
    const length = Number(field & 0x00ff_ffff_ffff_ffffn);
    const pad = field >> 63n ? Number((field >> 56n) & 0x7n) : 0;
    if (length <= 0 || at + 8 + length + pad > size) break;
    records.push({ start: at + 8, length });
    at += 8 + length + pad;
  }
  return records;
}

function flipWalRecord(fd: number, size: number, path: string): DamageDone {
  const records = walRecords(fd, size);
  if (records.length < 3) throw new Error(`corruptFile: ${path} holds ${records.length} WAL record(s): too few to damage one in the middle`);
  // From the middle outwards: a record none of whose 512-byte sectors is all zeros after the flip (etcd's decoder
  // takes a record with a zero sector for a torn write, and repairs the WAL by cutting it off instead of failing).
  const mid = Math.floor(records.length / 2);
  const order = records.slice(1, -1).map((_, i) => i + 1).sort((a, b) => Math.abs(a - mid) - Math.abs(b - mid));
  for (const i of order) {
    const rec = records[i]!;
    const data = readAt(fd, rec.start, rec.length);
    const at = Math.floor(rec.length / 2);
    data[at] = data[at]! ^ 0xff;
    let torn = false;
    for (let from = 0; from < data.length; ) {
      const to = Math.min(data.length, from + WAL_SECTOR - ((rec.start + from) % WAL_SECTOR));
      if (data.subarray(from, to).every((x) => x === 0)) torn = true;
      from = to;
    }
    if (torn) continue;
    writeSync(fd, data, at, 1, rec.start + at);
    return { how: 'wal-record', offset: rec.start + at, bytes: 1 };
  }
  throw new Error(`corruptFile: ${path}: no WAL record in the middle could be damaged without looking like a torn write`);
}

/** Damage a file the way disks and interrupted copies do (see FileDamage); throws rather than damage nothing. */
export function corruptFile(path: string, how: FileDamage): DamageDone {
  const size = statSync(path).size;
  const fd = openSync(path, 'r+');
  try {
    if (size === 0) throw new Error(`corruptFile: ${path} is empty`);
    switch (how) {
      case 'bbolt-meta':
        return zeroBoltMeta(fd, path);
      case 'wal-record':
        return flipWalRecord(fd, size, path);
      case 'truncate-half':
      case 'truncate-tail': {
        const keep = how === 'truncate-half' ? Math.floor(size / 2) : Math.max(0, size - 16);
        if (allZero(fd, keep, size)) {
          throw new Error(`corruptFile: cutting ${path} to ${keep} of ${size} bytes would remove only zeros (preallocated space): use bbolt-meta or wal-record`);
        }
        ftruncateSync(fd, keep);
        return { how, offset: keep, bytes: size - keep };
      }
      case 'flip-byte': {
        const at = Math.floor(size / 2);
        const b = readAt(fd, at, 1);
        b[0] = b[0]! ^ 0xff;
        writeSync(fd, b, 0, 1, at);
        return { how, offset: at, bytes: 1 };
      }
    }
  } finally {
    closeSync(fd);
  }
}
