/**
 * Keeping a long stream's garbage bounded. A gRPC stream allocates fresh buffers for every 32 KiB chunk, and V8
 * only collects them once ~64 MiB of such external memory has piled up; on a runner whose baseline is already
 * ~130 MiB that overshoot is most of the memory budget. Collecting the young generation every few MiB keeps the
 * garbage to a few MiB whatever the snapshot size. `gc` is exposed at run time (the documented `--expose-gc` flag,
 * set with v8.setFlagsFromString and fetched from a fresh context); when that is not possible, it does nothing.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type GcFn = (opts?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;

let gc: GcFn | null | undefined;

function gcFn(): GcFn | null {
  if (gc !== undefined) return gc;
  try {
    const existing = (globalThis as { gc?: GcFn }).gc;
    if (existing) return (gc = existing);
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as GcFn;
  } catch {
    gc = null;
  }
  return gc;
}

/** Calls `collectGarbage` every `everyBytes` of progress. */
export function garbageBound(everyBytes = 8 * 1024 * 1024): { progress(bytes: number): void; finish(): void } {
  let since = 0;
  return {
    progress(bytes) {
      since += bytes;
      if (since >= everyBytes) {
        since = 0;
        gcFn()?.({ type: 'minor' });
      }
    },
    finish() {
      gcFn()?.({ type: 'major' });
    },
  };
}
