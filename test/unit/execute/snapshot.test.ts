/** The persisted machine snapshot (src/execute/snapshot.ts): restored only when it is this runbook's and was active. */
import { describe, expect, it } from 'vitest';
import { restorableSnapshot } from '../../../src/execute/snapshot.ts';
import { newRunState } from '../../../src/execute/state.ts';

const hash = 'a'.repeat(64);
const saved = (over: Record<string, unknown> = {}) => JSON.stringify({ hash, snapshot: { status: 'active', value: 'compact', context: {} }, ...over });

describe('restorableSnapshot', () => {
  it('restores an active snapshot of the same runbook', () => {
    expect(restorableSnapshot(saved(), hash, newRunState())).toMatchObject({ status: 'active', value: 'compact' });
  });
  it('replays the journal instead when the snapshot is missing, damaged, of another runbook or not active', () => {
    const fold = newRunState();
    expect(restorableSnapshot(undefined, hash, fold)).toBeUndefined();
    expect(restorableSnapshot('{"hash":', hash, fold)).toBeUndefined();
    expect(restorableSnapshot(saved({ hash: 'b'.repeat(64) }), hash, fold)).toBeUndefined();
    expect(restorableSnapshot(saved({ snapshot: { status: 'error', error: {} } }), hash, fold)).toBeUndefined();
  });
  it('replays the journal after a failed or cancelled run (its snapshot is where it stopped, not where it resumes)', () => {
    for (const status of ['failed', 'cancelled'] as const) {
      const fold = { ...newRunState(), status };
      expect(restorableSnapshot(saved(), hash, fold)).toBeUndefined();
    }
  });
});
