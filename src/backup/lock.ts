/**
 * One stream per backup dir: two writers appending to the same segments would interleave records. The lock is a
 * file created exclusively (`deltas/stream.lock` with the holder's pid and host); a lock whose pid no longer runs
 * on this host is stale (the holder crashed) and is taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../util/errors.ts';
import { deltasDir } from './segments.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function lockStream(backupDir: string): { release(): void } {
  const dir = deltasDir(backupDir);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'stream.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o644);
      writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
      closeSync(fd);
      return {
        release() {
          // The lock is ours and holds no data: removing it is what releasing means.
          try {
            unlinkSync(file);
          } catch {
            // gone already
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder: { pid?: number; host?: string } = {};
      try {
        holder = JSON.parse(readFileSync(file, 'utf8')) as typeof holder;
      } catch {
        // unreadable: treat as stale
      }
      if (holder.pid && holder.host === hostname() && alive(holder.pid)) {
        throw new UserError(`another backup stream (pid ${holder.pid}) writes to ${backupDir}: one stream per backup dir`, { exitCode: 4 });
      }
      if (holder.pid && holder.host && holder.host !== hostname()) {
        throw new UserError(`a backup stream on host ${holder.host} (pid ${holder.pid}) holds ${file}; if it is gone, move that file aside`, { exitCode: 4 });
      }
      unlinkSync(file);
    }
  }
  throw new UserError(`cannot take the stream lock in ${dir}`, { exitCode: 4 });
}
