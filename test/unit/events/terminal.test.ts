/** What an operator reads on the terminal while a run goes: what failed and where, what happens next, what to type. */
import { describe, expect, it } from 'vitest';
import { formatRecord } from '../../../src/events/terminal.ts';
import type { JournalRecord, RunEvent } from '../../../src/events/types.ts';

const rec = (e: RunEvent): JournalRecord => ({ ...e, seq: 1, ts: '2026-01-01T00:00:00Z', runId: 'r-1' }) as JournalRecord;
const plain = { color: false };

describe('formatRecord', () => {
  it('a failed attempt names the step, the member, the attempt and when it retries', () => {
    const line = formatRecord(rec({ type: 'step.failed', stepId: 'defrag', item: 'm2', attempt: 2, durationMs: 1500, willRetry: true, retryInMs: 4000, error: { kind: 'timeout', message: 'deadline exceeded', member: 'm2' } }), plain);
    expect(line).toBe('✗ defrag [m2] attempt 2, 1.50s: deadline exceeded (member m2) — retrying in 4.00s');
  });

  it('a failed run says where it failed, the hint, and the command that resumes it', () => {
    const out = formatRecord(rec({ type: 'run.finished', status: 'failed', durationMs: 65_000, error: { kind: 'failed', message: 'NOSPACE alarm still raised', stepId: 'disarm', member: 'm1', hint: 'check the db size' } }), plain)!;
    expect(out.split('\n')).toEqual([
      '■ run r-1 failed in 1m5s',
      '  failed at step "disarm" on member m1: NOSPACE alarm still raised',
      '  check the db size',
      '  resume with: runbook resume r-1',
    ]);
  });

  it('a plan (dry run) that fails does not offer to resume it', () => {
    const out = formatRecord(rec({ type: 'run.finished', status: 'failed', durationMs: 10, error: { kind: 'failed', message: 'x' } }), { color: false, dryRun: true })!;
    expect(out).not.toContain('resume');
  });

  it('an approval request prints the commands that approve and deny it', () => {
    const out = formatRecord(rec({ type: 'approval.requested', stepId: 'restore', message: 'replaces every member’s data' }), plain)!;
    expect(out).toContain('restore: waiting for approval — replaces every member’s data');
    expect(out).toContain('approve: runbook approve r-1 restore');
    expect(out).toContain('deny: runbook deny r-1 restore');
  });

  it('a step found already done by its probe says so instead of claiming it ran', () => {
    const out = formatRecord(rec({ type: 'step.succeeded', stepId: 'compact', durationMs: 20, via: 'probe', output: { revision: 1234 } }), plain);
    expect(out).toBe('✓ compact (already done) 20ms revision 1234');
  });

  it('probes that found nothing done are shown only with --verbose (or when a step was interrupted)', () => {
    const probe = rec({ type: 'step.probe', stepId: 'defrag', item: 'm1', done: false });
    expect(formatRecord(probe, plain)).toBeUndefined();
    expect(formatRecord(probe, { color: false, verbose: true })).toBe('  defrag [m1]: probe: not done yet');
    expect(formatRecord(rec({ type: 'step.probe', stepId: 'defrag', item: 'm1', done: false, inDoubt: true }), plain)).toBe('  defrag [m1]: was interrupted; probe: not done yet');
  });

  it('colours only when asked (NO_COLOR, not a TTY: no escape codes at all)', () => {
    const e = rec({ type: 'approval.granted', stepId: 'restore', by: 'alice', via: 'cli' });
    expect(formatRecord(e, plain)).toBe('✓ restore: approved by alice (cli)');
    expect(formatRecord(e, { color: true })).toContain('\u001b[32m');
  });
});
