/** The end-of-run report from a journal: what a defrag reclaimed when the runner that did it died before saying so. */
import { describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../../src/events/types.ts';
import { buildReport } from '../../../src/execute/report.ts';
import { foldJournal } from '../../../src/execute/state.ts';
import type { Runbook } from '../../../src/runbook/model.ts';

const runbook = { steps: [{ id: 'defrag', action: 'etcd.defrag' }] } as unknown as Runbook;
const MiB = 1024 * 1024;
let seq = 0;
const rec = (r: Record<string, unknown>): JournalRecord => ({ seq: ++seq, ts: new Date(1_700_000_000_000 + seq * 1000).toISOString(), runId: 'r', ...r }) as JournalRecord;
const skippedOutput = (member: string, size: number) => ({ member, memberId: '1', skipped: true, reason: 'nothing to gain', before: { dbSize: size, inUse: size }, after: { dbSize: size, inUse: size }, reclaimedBytes: 0 });

describe('buildReport after a takeover', () => {
  it('counts the bytes a defrag reclaimed when its runner died before journaling it (the probe saw it done)', () => {
    const records = [
      rec({ type: 'step.items', stepId: 'defrag', items: ['m1', 'm2'] }),
      // first runner: m1 logged its size, defragmented, was killed before step.succeeded
      rec({ type: 'step.started', stepId: 'defrag', item: 'm1', attempt: 1 }),
      rec({ type: 'step.log', stepId: 'defrag', item: 'm1', message: 'defragmenting m1', data: { workBytes: 5 * MiB, before: { dbSize: 64 * MiB, inUse: 5 * MiB } } }),
      rec({ type: 'run.resumed', runId: 'r', pid: 2, note: 'taken over' }),
      // second runner: the probe finds m1 small (nothing to gain), m2 is defragmented for real
      rec({ type: 'step.probe', stepId: 'defrag', item: 'm1', done: true, inDoubt: true }),
      rec({ type: 'step.succeeded', stepId: 'defrag', item: 'm1', via: 'probe', durationMs: 0, output: skippedOutput('m1', 6 * MiB) }),
      // m2 had nothing to gain before anyone touched it: it stays a skip
      rec({ type: 'step.succeeded', stepId: 'defrag', item: 'm2', via: 'probe', durationMs: 0, output: skippedOutput('m2', 6 * MiB) }),
    ];
    const report = buildReport(runbook, foldJournal(records), 0);
    const m1 = report.space!.find((s) => s.member === 'm1')!;
    expect(m1).toMatchObject({ dbSizeBefore: 64 * MiB, dbSizeAfter: 6 * MiB, reclaimedBytes: 58 * MiB });
    expect(m1.skipped).toBeUndefined();
    expect(report.space!.find((s) => s.member === 'm2')).toMatchObject({ reclaimedBytes: 0, skipped: true });
  });
});
