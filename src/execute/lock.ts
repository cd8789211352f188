/**
 * One run per target cluster. The lock is a file created with O_EXCL under the state dir, keyed by the cluster's
 * identity (inventory name + its member URLs). A lock whose holder is a dead process on this host is stale: the
 * same run may take it over (resume after a crash); another run needs --break-lock.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Inventory } from '../inventory/types.ts';
import { ExitCode, UserError } from '../util/errors.ts';
import { isAlive as pidAlive } from '../util/pids.ts';

export interface LockHolder {
  runId: string;
  pid: number;
  host: string;
  since: string;
  command: string;
}

export interface HeldLock {
  file: string;
  key: string;
  release(): void;
}

export function clusterKey(inv: Pick<Inventory, 'name' | 'members'>): string {
  const urls = inv.members.map((m) => `${m.clientURL}|${m.peerURL}`).sort().join(',');
  const digest = crypto.createHash('sha256').update(urls).digest('hex').slice(0, 12);
  const name = inv.name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 60) || 'cluster';
  return `${name}-${digest}`;
}

export { isAlive as pidAlive } from '../util/pids.ts';

export function readLock(file: string): LockHolder | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}

export function acquireLock(
  stateDir: string,
  inv: Pick<Inventory, 'name' | 'members'>,
  runId: string,
  opts: { breakLock?: boolean } = {},
): HeldLock {
  const key = clusterKey(inv);
  const dir = path.join(stateDir, 'locks');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${key}.lock`);
  const me: LockHolder = { runId, pid: process.pid, host: os.hostname(), since: new Date().toISOString(), command: process.argv.slice(2).join(' ').slice(0, 300) };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, `${JSON.stringify(me)}\n`, { flag: 'wx' });
      return held(file, key, runId);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readLock(file);
    const sameHost = holder?.host === os.hostname();
    const dead = holder ? sameHost && !pidAlive(holder.pid) : true; // unreadable lock file = torn create: stale
    if (!dead) {
      throw new UserError(
        `cluster "${inv.name}" is locked by run ${holder!.runId} (pid ${holder!.pid} on ${holder!.host}, since ${holder!.since}).\n` +
          `  Only one run may recover a cluster at a time. Watch it with: runbook status ${holder!.runId}`,
        { exitCode: ExitCode.locked },
      );
    }
    if (holder && holder.runId !== runId && !opts.breakLock) {
      throw new UserError(
        `cluster "${inv.name}" has a stale lock from run ${holder.runId} (pid ${holder.pid} on ${holder.host} is not running).\n` +
          `  Resume that run with: runbook resume ${holder.runId}\n  or, if it is abandoned, break the lock with --break-lock`,
        { exitCode: ExitCode.locked },
      );
    }
    // Stale: move it aside (never silently lose who held it), then retry the exclusive create.
    try {
      fs.renameSync(file, `${file}.stale-${Date.now()}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  throw new UserError(`could not take the lock for cluster "${inv.name}" (${file}): another process keeps taking it`, { exitCode: ExitCode.locked });
}

function held(file: string, key: string, runId: string): HeldLock {
  let released = false;
  return {
    file,
    key,
    release() {
      if (released) return;
      released = true;
      const holder = readLock(file);
      if (holder && holder.runId === runId && holder.pid === process.pid) {
        try { fs.unlinkSync(file); } catch { /* already gone */ }
      }
    },
  };
}
