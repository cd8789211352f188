/**
 * Which full snapshots local backup retention keeps (pure): by chain count, by the age at which a chain ended,
 * never the newest. The moving itself is exercised on a real stream in test/integration/backup-retention.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { oldestKept } from '../../../src/backup/retention.ts';

const now = Date.parse('2026-12-07T12:00:00Z');
const h = 3600_000;
// newest first: a full snapshot every 6 h
const bases = [
  { revision: 400, createdAt: now - 1 * h },
  { revision: 300, createdAt: now - 7 * h },
  { revision: 200, createdAt: now - 13 * h },
  { revision: 100, createdAt: now - 19 * h },
];

describe('oldestKept', () => {
  it('keeps everything without a policy, and nothing to keep without snapshots', () => {
    expect(oldestKept(bases, {}, now)).toBe(100);
    expect(oldestKept([], { keepChains: 1 }, now)).toBeUndefined();
  });

  it('keepChains: the newest N snapshots, at least the newest one', () => {
    expect(oldestKept(bases, { keepChains: 2 }, now)).toBe(300);
    expect(oldestKept(bases, { keepChains: 10 }, now)).toBe(100);
    expect(oldestKept(bases, { keepChains: 0 }, now)).toBe(400);
  });

  it('maxAge: a chain expires once the next snapshot is older than maxAge, so every point of the period stays restorable', () => {
    // 8 h back lies in the chain of 200 (13 h to 7 h ago): kept; the chain of 100 ended 13 h ago: expired.
    expect(oldestKept(bases, { maxAgeMs: 8 * h }, now)).toBe(200);
    // 6 h back lies in the chain of 300 (7 h ago to 1 h ago): the chain of 200 ended 7 h ago, expired.
    expect(oldestKept(bases, { maxAgeMs: 6 * h }, now)).toBe(300);
    // The newest is kept whatever its age.
    expect(oldestKept(bases, { maxAgeMs: 1 }, now)).toBe(400);
  });

  it('both: whichever keeps less', () => {
    expect(oldestKept(bases, { keepChains: 3, maxAgeMs: 6 * h }, now)).toBe(300);
    expect(oldestKept(bases, { keepChains: 1, maxAgeMs: 100 * h }, now)).toBe(400);
  });
});
