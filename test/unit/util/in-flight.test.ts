import { describe, expect, it } from 'vitest';
import { sharedWhileRunning } from '../../../src/util/in-flight.ts';

describe('sharedWhileRunning', () => {
  it('runs the work once for callers that ask while it runs, and anew once it has settled (a failure too)', async () => {
    const running = new Map<string, Promise<number>>();
    let starts = 0;
    let release!: (v: number) => void;
    const start = () => {
      starts++;
      return new Promise<number>((r) => (release = r));
    };
    const a = sharedWhileRunning(running, 'k', start);
    const b = sharedWhileRunning(running, 'k', start);
    expect(b).toBe(a);
    expect(starts).toBe(1);
    release(7);
    expect(await Promise.all([a, b])).toEqual([7, 7]);
    expect(running.size).toBe(0);
    const failing = sharedWhileRunning(running, 'k', () => Promise.reject(new Error('no')));
    await expect(failing).rejects.toThrow('no');
    expect(running.size).toBe(0);
    const c = sharedWhileRunning(running, 'k', start);
    expect(starts).toBe(2);
    release(8);
    expect(await c).toBe(8);
  });
});
