/**
 * Waiting for the clock instead of sleeping: snapshots are ordered by their time (manifest createdAt, else mtime),
 * so a test that makes a "newer" one waits until the clock has passed the older one's mtime (polled, bounded),
 * not for a fixed number of ms that a loaded machine may not honour.
 */
import { statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export async function clockPast(file: string, timeoutMs = 10_000): Promise<void> {
  const mtime = statSync(file).mtimeMs;
  for (const until = Date.now() + timeoutMs; Date.now() <= Math.ceil(mtime); await sleep(1)) {
    if (Date.now() > until) throw new Error(`clockPast: the clock did not pass ${file}'s mtime (${new Date(mtime).toISOString()}) within ${timeoutMs} ms`);
  }
}
