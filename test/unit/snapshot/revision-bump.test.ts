/** The revision bump of a restore: past the cluster's current revision whatever the target, so revisions only grow. */
import { describe, expect, it } from 'vitest';
import { BUMP_REVISION, revisionBump } from '../../../src/snapshot/etcd-tools.ts';

describe('revisionBump', () => {
  it('lands the restored target at the current revision plus the margin', () => {
    expect(100 + revisionBump(100, 500)).toBe(500 + BUMP_REVISION);
    expect(revisionBump(500, 500)).toBe(BUMP_REVISION);
  });

  it('a second restore to an earlier point still moves forward past the first one', () => {
    const first = 400 + revisionBump(400, 500); // the cluster after restoring revision 400
    const second = 200 + revisionBump(200, first + 10); // then back to revision 200, after 10 more writes
    expect(second).toBeGreaterThan(first + 10);
  });

  it('never bumps by less than the margin (a target the live cluster has not reached, e.g. read from a lagging member)', () => {
    expect(revisionBump(900, 500)).toBe(BUMP_REVISION);
  });
});
