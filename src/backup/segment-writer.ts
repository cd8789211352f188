/**
 * Appends revision records to the open segment. Writes are synchronous appends (one `write` per record, so a
 * record is either whole on disk or a torn tail recovery cuts), fsync'd when `sync()` is called (the stream does
 * it at most every fsync interval), and the segment is rotated (sealed, a new one opened) by size or age. Only
 * whole records are ever written, so a revision never straddles two segments.
 */
import { closeSync, fdatasyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDir } from '../drivers/safe-fs.ts';
import { encodeHeader, encodeRecord, type BaseSnapshotRef, type RevisionRecord } from './record.ts';
import { deltasDir, sealSegment, segmentName, type SegmentManifest } from './segments.ts';

export interface RotationPolicy {
  /** Seal the segment once it is this big (bytes). */
  maxBytes: number;
  /** Seal the segment once its first record is this old (ms). */
  maxAgeMs: number;
}

export class SegmentWriter {
  readonly backupDir: string;
  readonly cluster: string;
  readonly policy: RotationPolicy;
  #fd: number | undefined;
  #path: string | undefined;
  #size = 0;
  #records = 0;
  #firstAt = 0;
  #dirty = false;
  /** Last revision written (durable or not). */
  lastRevision: number;
  /** Last revision known to be on disk (fsync'd). */
  durableRevision: number;
  base: BaseSnapshotRef;

  constructor(o: { backupDir: string; cluster: string; policy: RotationPolicy; after: number; base: BaseSnapshotRef }) {
    this.backupDir = o.backupDir;
    this.cluster = o.cluster;
    this.policy = o.policy;
    this.lastRevision = o.after;
    this.durableRevision = o.after;
    this.base = o.base;
    mkdirSync(deltasDir(o.backupDir), { recursive: true });
  }

  get openPath(): string | undefined {
    return this.#path;
  }

  /** Append one revision. Opens a segment first when none is open. */
  append(rec: RevisionRecord): void {
    if (rec.revision <= this.lastRevision) return; // a reconnect may replay what we already hold
    if (this.#fd === undefined) this.#open(rec.observedAt);
    const buf = encodeRecord(rec);
    let off = 0;
    while (off < buf.length) off += writeSync(this.#fd!, buf, off);
    this.#size += buf.length;
    this.#records++;
    this.#dirty = true;
    this.lastRevision = rec.revision;
  }

  /** fsync what was appended; returns true when something was flushed. */
  sync(): boolean {
    if (this.#fd === undefined || !this.#dirty) return false;
    fdatasyncSync(this.#fd);
    this.#dirty = false;
    this.durableRevision = this.lastRevision;
    return true;
  }

  /** Due for rotation by size or age? */
  due(now = Date.now()): boolean {
    return this.#records > 0 && (this.#size >= this.policy.maxBytes || now - this.#firstAt >= this.policy.maxAgeMs);
  }

  /** fsync and seal the open segment (if it holds records). The next append opens a new one. */
  async seal(): Promise<SegmentManifest | undefined> {
    if (this.#fd === undefined) return undefined;
    this.sync();
    closeSync(this.#fd);
    this.#fd = undefined;
    const path = this.#path!;
    this.#path = undefined;
    const records = this.#records;
    this.#records = 0;
    this.#size = 0;
    return records > 0 ? sealSegment(path) : undefined;
  }

  /**
   * A gap: the stream cannot continue from lastRevision (history compacted). Seals the current segment and makes
   * the next one continue from `after` on a new base.
   */
  async restartAt(after: number, base: BaseSnapshotRef): Promise<SegmentManifest | undefined> {
    const sealed = await this.seal();
    this.lastRevision = after;
    this.durableRevision = after;
    this.base = base;
    return sealed;
  }

  /** Close without sealing (a stop: the next stream run seals it after checking it). */
  close(): void {
    if (this.#fd === undefined) return;
    this.sync();
    closeSync(this.#fd);
    this.#fd = undefined;
  }

  #open(now: number): void {
    const path = join(deltasDir(this.backupDir), segmentName(this.cluster, this.lastRevision, 'open'));
    // 'wx': never over an existing file (recovery sealed or moved aside whatever was there).
    this.#fd = openSync(path, 'wx', 0o640);
    this.#path = path;
    const header = encodeHeader({ version: 1, cluster: this.cluster, after: this.lastRevision, base: this.base, openedAt: now });
    writeSync(this.#fd, header);
    fdatasyncSync(this.#fd);
    fsyncDir(deltasDir(this.backupDir));
    this.#size = header.length;
    this.#records = 0;
    this.#firstAt = now;
  }
}
