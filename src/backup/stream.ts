/**
 * `runbook backup stream`: a full snapshot (the verified save path, with its manifest), then every change of the
 * whole keyspace, revision by revision, into delta segments (segment-writer.ts), for as long as it runs.
 *
 * - Resumes where the last run stopped: open segments are checked (torn tails cut, moved aside, never deleted)
 *   and sealed, and the watch starts at the last complete revision + 1.
 * - Survives a member's loss and leader changes: the watch is on one member; when that member stops answering
 *   (error, stream end, or no answer to progress requests for `idleMs`) it moves to the next member of the
 *   inventory and resumes from the last revision it holds + 1. A revision already held is never written twice.
 * - Compaction of the revision it needs: it cannot get those changes anywhere, so it takes a new full snapshot,
 *   continues from that snapshot's revision, and records the gap (revisions lost between the two) in the log
 *   and the status. A point-in-time restore into the gap is refused rather than faked.
 * - Leases: for a lease first seen on a put, its granted TTL is asked (LeaseTimeToLive) and recorded with the
 *   revision, so a restore can grant it again under the same id (see replay.ts for the lease choice).
 * - Memory is bounded: revisions are written as they arrive, the watch is paused while the writer is behind.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EtcdPool } from '../etcd/pool.ts';
import type { Inventory } from '../inventory/types.ts';
import { saveSnapshot } from '../snapshot/save.ts';
import { messageOf, UserError } from '../util/errors.ts';
import { copyBackups, type CopyDestination } from './copy.ts';
import { lockStream } from './lock.ts';
import { applyBackupRetention, type BackupRetention } from './retention.ts';
import type { BaseSnapshotRef, RevisionRecord } from './record.ts';
import { recoverOpenSegments } from './recover.ts';
import { SegmentWriter, type RotationPolicy } from './segment-writer.ts';
import { listSegments } from './segments.ts';
import { appendLog, readStatus, writeStatus, type StreamStatus } from './status.ts';
import { watchKeyspace, type RevisionBatch } from './watch.ts';

export interface StreamOptions {
  inventory: Inventory;
  backupDir: string;
  /** fsync the open segment at most this long after a write (default 1 s): the RPO the stream promises. */
  fsyncIntervalMs?: number;
  rotation?: Partial<RotationPolicy>;
  /** Take a new full snapshot after this long (default 6 h) … */
  fullEveryMs?: number;
  /** … or after this many bytes of deltas since the last one (default 1 GiB). */
  fullAfterBytes?: number;
  /** How often to ask the member whether the stream is caught up (default 1 s). */
  progressEveryMs?: number;
  /** A member that answers nothing this long is given up for the next one (default 10 s). */
  idleMs?: number;
  /** Copy every sealed segment and full snapshot there, verified (copy.ts), after each seal and snapshot. */
  copyTo?: CopyDestination[];
  /** Local retention by whole chains, applied after every full snapshot (retention.ts: moved aside, never deleted). */
  retention?: BackupRetention;
  /**
   * Why this stream may no longer write, once it may not (`runbook serve`: the cluster's stream lock was lost, so
   * another replica may be streaming). Checked before every write; the caller also aborts `signal`. From then on
   * nothing more is written, not even the seal of the open segment (the next stream recovers it).
   */
  fenced?: () => string | undefined;
  signal?: AbortSignal;
  log?: (message: string) => void;
}

export const DEFAULT_ROTATION: RotationPolicy = { maxBytes: 64 * 1024 * 1024, maxAgeMs: 10 * 60_000 };
const LEASE_CACHE_MAX = 100_000;

function refOf(r: { file: string; sha256: string; revision: number; createdAt: string }): BaseSnapshotRef {
  return { file: basename(r.file), sha256: r.sha256, revision: r.revision, createdAt: r.createdAt };
}

/** Where the last run left the chain: the base snapshot and the last revision held, or nothing (start afresh). */
function resumePoint(backupDir: string, cluster: string): { base: BaseSnapshotRef; after: number } | undefined {
  const sealed = listSegments(backupDir, cluster).filter((s) => s.manifest);
  const last = sealed.reduce<(typeof sealed)[number] | undefined>((a, s) => (!a || s.manifest!.lastRevision > a.manifest!.lastRevision ? s : a), undefined);
  const status = readStatus(backupDir);
  const statusBase = status && status.cluster === cluster && existsSync(join(backupDir, status.base.file)) ? status.base : undefined;
  const lastRev = last?.manifest?.lastRevision;
  if (statusBase && (lastRev === undefined || statusBase.revision >= lastRev)) return { base: statusBase, after: statusBase.revision };
  if (last?.manifest && existsSync(join(backupDir, last.manifest.base.file))) return { base: statusBase ?? last.manifest.base, after: last.manifest.lastRevision };
  return undefined;
}

export async function runStream(o: StreamOptions): Promise<void> {
  const log = o.log ?? (() => {});
  const inv = o.inventory;
  if (inv.members.length === 0) throw new UserError(`inventory ${inv.name} has no members`);
  const fsyncEvery = o.fsyncIntervalMs ?? 1000;
  const lock = lockStream(o.backupDir);
  const pool = new EtcdPool(inv);
  const leaseTTL = new Map<string, number>();
  let memberIdx = 0;
  let bytesSinceFull = 0;
  let fullInFlight: Promise<void> | undefined;
  let progress: { revision: number; at: number } | undefined;
  const status: StreamStatus = {
    version: 1, cluster: inv.name, pid: process.pid, base: { file: '', sha256: '', revision: 0, createdAt: '' },
    lastRevision: 0, durableRevision: 0, gaps: 0, state: 'starting', updatedAt: Date.now(),
  };
  // Copies run one at a time, behind the stream; a request while one runs makes it run once more after.
  let copying: Promise<void> | undefined;
  let copyAgain = false;
  const scheduleCopy = () => {
    const targets = o.copyTo ?? [];
    if (targets.length === 0) return;
    if (copying) {
      copyAgain = true;
      return;
    }
    copying = (async () => {
      do {
        copyAgain = false;
        for (const target of targets) {
          try {
            const r = await copyBackups(o.backupDir, inv.name, target, { log });
            for (const c of r.conflicts) log(`copy conflict: ${c.reason}`);
            if (r.copied.length) appendLog(o.backupDir, 'copied', { to: target.label, files: r.copied });
          } catch (err) {
            log(`copy to ${target.label} failed (retried after the next seal): ${messageOf(err)}`);
          }
        }
      } while (copyAgain);
    })().finally(() => {
      copying = undefined;
    });
  };
  const publish = () => {
    status.updatedAt = Date.now();
    writeStatus(o.backupDir, status);
  };

  /** Retention after a new full snapshot: a failure to move files is reported and retried after the next one. */
  const expire = () => {
    try {
      const r = applyBackupRetention(o.backupDir, inv.name, o.retention!);
      if (r.movedTo) {
        appendLog(o.backupDir, 'expired', { movedTo: r.movedTo, snapshots: r.snapshots, segments: r.segments });
        log(`retention: moved ${r.snapshots.length} full snapshot(s) and ${r.segments.length} segment(s) to ${r.movedTo}`);
      }
    } catch (err) {
      log(`retention failed (tried again after the next full snapshot): ${messageOf(err)}`);
    }
  };

  /** A full snapshot from the first member that gives one. */
  const takeFull = async (why: string): Promise<BaseSnapshotRef> => {
    const fence = o.fenced?.();
    if (fence) throw new Error(`fenced: ${fence}`);
    let lastErr: unknown;
    for (let i = 0; i < inv.members.length; i++) {
      const m = inv.members[(memberIdx + i) % inv.members.length]!;
      try {
        const r = await saveSnapshot({ pool, inventory: inv, endpoint: m.clientURL, dir: o.backupDir, log, ...(o.signal ? { signal: o.signal } : {}) });
        const ref = refOf({ ...r, file: r.path });
        appendLog(o.backupDir, 'snapshot', { why, file: ref.file, revision: ref.revision, sha256: ref.sha256, member: m.name });
        scheduleCopy();
        log(`full snapshot ${ref.file} at revision ${ref.revision} (${why})`);
        bytesSinceFull = 0;
        if (o.retention) expire();
        return ref;
      } catch (err) {
        lastErr = err;
        if (o.signal?.aborted) throw err;
        log(`full snapshot from ${m.name} failed: ${messageOf(err)}`);
      }
    }
    throw lastErr instanceof Error ? lastErr : new Error(messageOf(lastErr));
  };

  try {
    const rec = await recoverOpenSegments(o.backupDir, inv.name, log);
    for (const m of rec.movedAside) appendLog(o.backupDir, 'moved-aside', m);
    scheduleCopy(); // whatever an earlier run sealed but did not copy
    let start = resumePoint(o.backupDir, inv.name);
    if (start) {
      log(`resuming after revision ${start.after} (base ${start.base.file})`);
      appendLog(o.backupDir, 'resume', { after: start.after, base: start.base.file });
    } else {
      status.state = 'snapshotting';
      const base = await takeFull('first full snapshot');
      start = { base, after: base.revision };
    }
    const writer = new SegmentWriter({
      backupDir: o.backupDir,
      cluster: inv.name,
      policy: { ...DEFAULT_ROTATION, ...o.rotation },
      after: start.after,
      base: start.base,
    });
    status.base = start.base;
    status.lastRevision = status.durableRevision = start.after;
    publish();

    const onRevision = async (b: RevisionBatch) => {
      const why = o.fenced?.();
      if (why) throw new Error(`fenced: ${why}`);
      if (b.revision <= writer.lastRevision) return;
      const fresh = b.leases.filter((l) => !leaseTTL.has(l));
      const leases: Record<string, number> = {};
      for (const id of fresh) {
        let ttl = -1;
        try {
          const r = await pool.member(inv.members[memberIdx]!.clientURL).leaseClient.leaseTimeToLive({ ID: id }, { deadline: Date.now() + pool.requestTimeoutMs });
          ttl = Number(r.grantedTTL) > 0 ? Number(r.grantedTTL) : -1;
        } catch {
          // the member went away mid-lookup: recorded as unknown; a restore then uses its fallback TTL
        }
        leases[id] = ttl;
        if (leaseTTL.size >= LEASE_CACHE_MAX) leaseTTL.delete(leaseTTL.keys().next().value!);
        leaseTTL.set(id, ttl);
      }
      const r: RevisionRecord = { revision: b.revision, observedAt: Date.now(), events: b.events, ...(fresh.length ? { leases } : {}) };
      const before = writer.openPath;
      writer.append(r);
      if (!before && writer.openPath) appendLog(o.backupDir, 'segment-opened', { file: basename(writer.openPath), after: r.revision });
      bytesSinceFull += b.events.reduce((n, e) => n + e.key.length + (e.value?.length ?? 0), 0);
      status.lastRevision = writer.lastRevision;
      status.lastEventAt = r.observedAt;
    };

    const tick = async () => {
      if (o.fenced?.()) return;
      const flushed = writer.sync();
      status.durableRevision = writer.durableRevision;
      if (flushed) status.syncedAt = Date.now();
      // Everything the member had when it answered the progress request was handed over before the answer
      // (progress.revision is the last of it); once that is on disk, the cluster's state at `progress.at` is
      // recoverable.
      if (progress && progress.revision <= writer.durableRevision) status.durableUpTo = progress.at;
      if (writer.due()) {
        const m = await writer.seal();
        if (m) {
          appendLog(o.backupDir, 'sealed', { file: m.file, firstRevision: m.firstRevision, lastRevision: m.lastRevision, sha256: m.sha256, size: m.size });
          log(`sealed ${m.file}: revisions ${m.firstRevision}..${m.lastRevision}, ${m.size} bytes`);
          scheduleCopy();
        }
      }
      const baseAge = Date.now() - Date.parse(status.base.createdAt);
      if (!fullInFlight && (baseAge >= (o.fullEveryMs ?? 6 * 3600_000) || bytesSinceFull >= (o.fullAfterBytes ?? 1024 ** 3))) {
        // Taken beside the running watch: the segments stay one contiguous log; the new snapshot is just a newer
        // starting point for restores.
        fullInFlight = takeFull(baseAge >= (o.fullEveryMs ?? 6 * 3600_000) ? 'periodic' : 'delta bytes since the last full snapshot')
          .then((ref) => {
            status.base = ref;
            writer.base = ref;
          })
          .catch((err) => log(`periodic full snapshot failed (will retry): ${messageOf(err)}`))
          .finally(() => {
            fullInFlight = undefined;
          });
      }
      publish();
    };
    let ticking = false;
    const timer = setInterval(() => {
      if (ticking) return;
      ticking = true;
      tick()
        .catch((err) => log(`backup tick failed: ${messageOf(err)}`))
        .finally(() => {
          ticking = false;
        });
    }, fsyncEvery);

    try {
      let failures = 0;
      while (!o.signal?.aborted) {
        const m = inv.members[memberIdx]!;
        status.member = m.name;
        status.state = 'streaming';
        const end = await watchKeyspace(
          pool.member(m.clientURL),
          { startRevision: writer.lastRevision + 1, progressEveryMs: o.progressEveryMs ?? 1000, idleMs: o.idleMs ?? 10_000, ...(o.signal ? { signal: o.signal } : {}) },
          {
            onRevision: async (b) => {
              failures = 0;
              await onRevision(b);
            },
            onProgress: () => {
              failures = 0;
              // The answer comes after every event up to the member's revision: the cluster's state now is what
              // the writer holds once it has written the last revision handed over (onRevision runs in order).
              progress = { revision: writer.lastRevision, at: Date.now() };
            },
          },
        );
        if (end.kind === 'stopped' || o.fenced?.()) break;
        if (end.kind === 'compacted') {
          status.state = 'snapshotting';
          log(`revision ${writer.lastRevision + 1} is compacted (compact revision ${end.compactRevision}): taking a new full snapshot`);
          await fullInFlight;
          const base = await takeFull('the history the stream needed was compacted');
          const from = writer.lastRevision;
          const sealed = await writer.restartAt(base.revision, base);
          if (sealed) appendLog(o.backupDir, 'sealed', { file: sealed.file, firstRevision: sealed.firstRevision, lastRevision: sealed.lastRevision, sha256: sealed.sha256, size: sealed.size });
          status.gaps++;
          appendLog(o.backupDir, 'gap', { afterRevision: from, resumedAt: base.revision, compactRevision: end.compactRevision, lostRevisions: Math.max(0, base.revision - from), base: base.file });
          status.base = base;
          status.lastRevision = status.durableRevision = base.revision;
          progress = undefined;
          continue;
        }
        failures++;
        status.state = 'reconnecting';
        status.lastError = `${m.name}: ${end.reason}`;
        appendLog(o.backupDir, 'member-lost', { member: m.name, reason: end.reason, lastRevision: writer.lastRevision });
        log(`watch on ${m.name} ended: ${end.reason}; resuming from revision ${writer.lastRevision + 1} on the next member`);
        pool.forget(m.clientURL);
        memberIdx = (memberIdx + 1) % inv.members.length;
        // Every member failed in a row: back off a little before going round again (bounded).
        if (failures >= inv.members.length) await sleep(Math.min(5000, 250 * failures), undefined, o.signal ? { signal: o.signal } : {}).catch(() => {});
      }
    } finally {
      clearInterval(timer);
      await fullInFlight;
      const fence = o.fenced?.();
      if (fence) {
        log(`stopped without sealing or writing anything more: ${fence}`);
        await copying;
      } else {
        const m = await writer.seal();
        if (m) appendLog(o.backupDir, 'sealed', { file: m.file, firstRevision: m.firstRevision, lastRevision: m.lastRevision, sha256: m.sha256, size: m.size });
        if (m) scheduleCopy();
        await copying;
        status.state = 'stopped';
        status.durableRevision = writer.durableRevision;
        if (progress && progress.revision <= writer.durableRevision) status.durableUpTo = progress.at;
        publish();
      }
    }
  } finally {
    pool.close();
    lock.release();
  }
}
