import { describe, expect, it } from 'vitest';
import { quorumOf, replacementVerdict, type VoterHealth } from '../../../src/actions/membership-quorum.ts';

const voters = (spec: string): VoterHealth[] => [...spec].map((c, i) => ({ name: `m${i + 1}`, healthy: c === '+' }));

describe('replacementVerdict', () => {
  it('quorum sizes', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(quorumOf)).toEqual([1, 2, 2, 3, 3, 4, 4]);
  });

  it('allows replacing the one dead member of 3, and says what remains', () => {
    const v = replacementVerdict({ voters: voters('+-+'), learners: [], target: 'm2' });
    expect(v).toMatchObject({ ok: true, votersAfter: 2, healthyAfter: ['m1', 'm3'], quorumAfter: 2 });
    if (v.ok) expect(v.summary).toBe('2 of 3 voters healthy (quorum 2); after removing m2: 2 voters, 2 healthy (quorum 2)');
  });

  it('refuses with 2 of 3 down: no quorum to commit the removal', () => {
    const v = replacementVerdict({ voters: voters('+--'), learners: [], target: 'm2' });
    expect(v).toMatchObject({ ok: false, reason: 'no quorum: 1 of 3 voters healthy (m1), 2 needed to commit the removal of m2' });
  });

  it('refuses to remove a healthy member that the quorum needs', () => {
    // 5 voters, m4 and m5 dead: removing the healthy m1 leaves 4 voters with 2 healthy, 3 needed.
    const v = replacementVerdict({ voters: voters('+++--'), learners: [], target: 'm1' });
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.reason).toBe('removing m1 would lose quorum: 4 voters would remain of which 2 healthy (m2, m3), 3 needed');
  });

  it('allows removing a dead member of 5 with another one dead (no fault tolerance left, but a quorum)', () => {
    expect(replacementVerdict({ voters: voters('++-+-'), learners: [], target: 'm3' })).toMatchObject({ ok: true, votersAfter: 4, quorumAfter: 3 });
  });

  it('refuses on 4 voters with 2 dead: the removal cannot commit', () => {
    const v = replacementVerdict({ voters: voters('++--'), learners: [], target: 'm3' });
    expect(v).toMatchObject({ ok: false });
    if (!v.ok) expect(v.reason).toMatch(/^no quorum: 2 of 4 voters healthy/);
  });

  it('refuses on a 2-member cluster, whether the target is dead or alive', () => {
    for (const spec of ['+-', '++']) {
      const v = replacementVerdict({ voters: voters(spec), learners: [], target: 'm2' });
      expect(v.ok).toBe(false);
      if (!v.ok) expect(v.reason).toMatch(/^the cluster has 2 voters/);
    }
    expect(replacementVerdict({ voters: voters('+'), learners: [], target: 'm1' })).toMatchObject({ ok: false, reason: 'm1 is the only voter: there is nothing to replace it from' });
  });

  it('refuses when a learner exists, before anything else', () => {
    const v = replacementVerdict({ voters: voters('+-+'), learners: ['m4 (abc, http://x:2380)'], target: 'm2' });
    expect(v.ok).toBe(false);
    if (!v.ok) {
      expect(v.reason).toMatch(/^a learner already exists \(m4/);
      expect(v.hint).toMatch(/runbook resume/);
    }
  });

  it('a member already removed: only a working quorum is needed (adding to 2 voters is fine)', () => {
    expect(replacementVerdict({ voters: voters('++'), learners: [] })).toMatchObject({ ok: true, votersAfter: 2 });
    expect(replacementVerdict({ voters: voters('+-'), learners: [] })).toMatchObject({ ok: false, reason: 'no quorum: 1 of 2 voters healthy (m1), 2 needed to add a member' });
  });
});
