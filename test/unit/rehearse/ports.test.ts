import { describe, expect, it } from 'vitest';
import { freePorts, portRange } from '../../../src/rehearse/ports.ts';
import { UserError } from '../../../src/util/errors.ts';

describe('throwaway cluster ports', () => {
  it('RUNBOOK_PORT_RANGE narrows the range; a bad value is a user error naming the variable', () => {
    expect(portRange({})).toEqual([20_000, 31_999]);
    expect(portRange({ RUNBOOK_PORT_RANGE: '21000-21999' })).toEqual([21_000, 21_999]);
    for (const bad of ['21000', '100-2000', '30000-29000', '21000-21010', '60000-70000', 'a-b']) {
      expect(() => portRange({ RUNBOOK_PORT_RANGE: bad })).toThrow(UserError);
      expect(() => portRange({ RUNBOOK_PORT_RANGE: bad })).toThrow(/^RUNBOOK_PORT_RANGE=/);
    }
  });

  it('each test worker has its own slice, and a port is never handed out twice by one process', async () => {
    const pool = Number(process.env.VITEST_POOL_ID ?? '1');
    const offset = Number(process.env.RUNBOOK_TEST_SLICE_OFFSET ?? '0') || 0;
    const [lo, hi] = portRange();
    expect(hi - lo + 1).toBe(600);
    expect(lo).toBe(20_000 + ((pool - 1 + offset) % 20) * 600);
    const seen = new Set<number>();
    for (let i = 0; i < 20; i++) {
      for (const p of await freePorts(6)) {
        expect(p).toBeGreaterThanOrEqual(lo);
        expect(p).toBeLessThanOrEqual(hi);
        expect(seen.has(p)).toBe(false);
        seen.add(p);
      }
    }
    expect(seen.size).toBe(120);
  });
});
