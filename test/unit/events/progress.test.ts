/**
 * The progress line's estimate, fed the records a defrag of three members journals: the second member's time to
 * go comes from the first member's measured throughput; a quick step shows nothing; an approval clears the line.
 */
import { describe, expect, it } from 'vitest';
import { createProgress } from '../../../src/events/progress.ts';
import type { JournalRecord, RunEvent } from '../../../src/events/types.ts';

const MiB = 1024 * 1024;
const t0 = Date.parse('2026-12-07T10:00:00.000Z');
let seq = 0;
const at = (ms: number, e: RunEvent): JournalRecord => ({ ...e, seq: ++seq, ts: new Date(t0 + ms).toISOString(), runId: 'r' }) as JournalRecord;

describe('progress line', () => {
  it('elapsed time, and an estimate from the throughput measured on earlier members', () => {
    const p = createProgress();
    p.observe(at(0, { type: 'step.started', stepId: 'defrag', item: 'm1', attempt: 1 }));
    expect(p.line(t0 + 500)).toBeUndefined(); // quick so far: no line
    p.observe(at(10, { type: 'step.log', stepId: 'defrag', item: 'm1', message: 'defragmenting m1', data: { workBytes: 100 * MiB } }));
    expect(p.line(t0 + 3000)).toBe('… defrag [m1]: 3.00s elapsed'); // nothing measured yet
    p.observe(at(4000, { type: 'step.log', stepId: 'defrag', item: 'm1', message: 'defragmented m1', data: { workBytes: 100 * MiB, workMs: 4000 } }));
    p.observe(at(4010, { type: 'step.succeeded', stepId: 'defrag', item: 'm1', durationMs: 4010 }));
    expect(p.line(t0 + 9000)).toBeUndefined();

    p.observe(at(5000, { type: 'step.started', stepId: 'defrag', item: 'm2', attempt: 1 }));
    p.observe(at(5010, { type: 'step.log', stepId: 'defrag', item: 'm2', message: 'defragmenting m2', data: { workBytes: 200 * MiB } }));
    // 200 MiB at the 25 MiB/s measured on m1: 8 s expected; 3 s in, 5 s to go.
    expect(p.line(t0 + 8000)).toBe('… defrag [m2]: 3.00s elapsed, about 5.00s to go (200 MiB at 25.0 MiB/s measured so far)');
    expect(p.line(t0 + 15_000)).toBe('… defrag [m2]: 10.0s elapsed, longer than the 8.00s expected at 25.0 MiB/s');
    p.observe(at(15_500, { type: 'approval.requested', stepId: 'next' }));
    expect(p.line(t0 + 16_000)).toBeUndefined();
  });
});
