/**
 * A live "how long so far, how long to go" line for the step in hand, for a person at a terminal. Fed the same
 * RunEvent stream as every other view; knows nothing about etcd. An action that can say how much work an item is
 * logs `data.workBytes` when it starts the work (and `workBytes` + `workMs` when done): the estimate for the next
 * item is its work at the throughput measured on the items before it (a defrag's in-use bytes on the previous
 * member). Without a measure it shows the elapsed time only.
 */
import type { JournalRecord } from './types.ts';
import { formatBytes, formatDuration } from '../util/units.ts';

export interface Progress {
  observe(rec: JournalRecord): void;
  /** The line to show now, or undefined when no step has been in progress for `quietMs` (default 2 s). */
  line(now?: number, quietMs?: number): string | undefined;
}

export function createProgress(): Progress {
  let current: { label: string; stepId: string; since: number; workBytes?: number } | undefined;
  /** Per step: bytes and milliseconds of finished items. */
  const done = new Map<string, { bytes: number; ms: number }>();
  return {
    observe(rec) {
      if (rec.type === 'step.started') {
        current = { label: rec.item ? `${rec.stepId} [${rec.item}]` : rec.stepId, stepId: rec.stepId, since: Date.parse(rec.ts) };
      } else if (rec.type === 'step.log' && current && rec.stepId === current.stepId) {
        const d = rec.data as { workBytes?: unknown; workMs?: unknown } | undefined;
        if (typeof d?.workBytes === 'number' && typeof d.workMs === 'number' && d.workMs > 0) {
          const t = done.get(rec.stepId) ?? { bytes: 0, ms: 0 };
          done.set(rec.stepId, { bytes: t.bytes + d.workBytes, ms: t.ms + d.workMs });
        } else if (typeof d?.workBytes === 'number') {
          current.workBytes = d.workBytes;
        }
      } else if (rec.type === 'step.succeeded' || rec.type === 'step.failed' || rec.type === 'step.finished' || rec.type === 'run.finished' || rec.type === 'approval.requested') {
        current = undefined;
      }
    },
    line(now = Date.now(), quietMs = 2000) {
      if (!current) return undefined;
      const elapsed = Math.max(0, now - current.since);
      if (elapsed < quietMs) return undefined; // a quick step needs no progress line
      let est = '';
      const t = done.get(current.stepId);
      if (current.workBytes !== undefined && t && t.bytes > 0) {
        const expected = (current.workBytes / t.bytes) * t.ms;
        const rate = (t.bytes / t.ms) * 1000;
        est = elapsed <= expected
          ? `, about ${formatDuration(Math.max(0, expected - elapsed))} to go (${formatBytes(current.workBytes)} at ${formatBytes(rate)}/s measured so far)`
          : `, longer than the ${formatDuration(expected)} expected at ${formatBytes(rate)}/s`;
      }
      return `… ${current.label}: ${formatDuration(elapsed)} elapsed${est}`;
    },
  };
}
