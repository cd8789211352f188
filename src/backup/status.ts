/**
 * The stream's own account of itself, `<backup dir>/deltas/stream-status.json`, rewritten atomically at every
 * fsync (so at most once per fsync interval), and `backup-log.jsonl`, an append-only log of what happened
 * (snapshots, seals, gaps, torn tails, reconnects). `runbook backup status` reads both; the lag it shows is the
 * RPO right now: how old the newest moment is up to which every change is on disk.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../drivers/safe-fs.ts';
import type { BaseSnapshotRef } from './record.ts';
import { deltasDir } from './segments.ts';

export interface StreamStatus {
  version: 1;
  cluster: string;
  pid: number;
  /** The member the watch is on. */
  member?: string;
  base: BaseSnapshotRef;
  lastRevision: number;
  /** Epoch ms the last revision was received. */
  lastEventAt?: number;
  durableRevision: number;
  /**
   * Epoch ms of the newest moment at which the stream had received everything the cluster had committed (a
   * progress answer) and all of it is fsync'd: the recovery point a loss now would go back to.
   */
  durableUpTo?: number;
  syncedAt?: number;
  gaps: number;
  state: 'starting' | 'streaming' | 'reconnecting' | 'snapshotting' | 'stopped';
  updatedAt: number;
  /** The last error (reconnects), without secrets. */
  lastError?: string;
}

export type LogEntry = { at: string; kind: string } & Record<string, unknown>;

export function statusPath(backupDir: string): string {
  return join(deltasDir(backupDir), 'stream-status.json');
}

export function logPath(backupDir: string): string {
  return join(deltasDir(backupDir), 'backup-log.jsonl');
}

export function writeStatus(backupDir: string, s: StreamStatus): void {
  writeFileAtomic(statusPath(backupDir), `${JSON.stringify(s)}\n`, 0o644);
}

export function readStatus(backupDir: string): StreamStatus | undefined {
  try {
    const s = JSON.parse(readFileSync(statusPath(backupDir), 'utf8')) as StreamStatus;
    return s.version === 1 ? s : undefined;
  } catch {
    return undefined;
  }
}

export function appendLog(backupDir: string, kind: string, data: Record<string, unknown> = {}): void {
  appendFileSync(logPath(backupDir), `${JSON.stringify({ at: new Date().toISOString(), kind, ...data })}\n`, { mode: 0o644 });
}

export function readLog(backupDir: string): LogEntry[] {
  let text: string;
  try {
    text = readFileSync(logPath(backupDir), 'utf8');
  } catch {
    return [];
  }
  const out: LogEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as LogEntry);
    } catch {
      // a torn last line after a crash
    }
  }
  return out;
}

/** Lag (RPO now) in ms: how far back a loss right now would go. Undefined before the first confirmation. */
export function lagMs(s: StreamStatus, now = Date.now()): number | undefined {
  return s.durableUpTo === undefined ? undefined : Math.max(0, now - s.durableUpTo);
}
