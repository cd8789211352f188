import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { TrailerHasher, checkSnapshotFile } from '../../../src/snapshot/file-check.ts';

/** A file laid out like an etcd snapshot: body + sha256(body). */
function withTrailer(body: Buffer): Buffer {
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

const dir = mkdtempSync(join(tmpdir(), 'runbook-filecheck-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('snapshot sha256 trailer', () => {
  it('is recognised however the bytes are split into chunks', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }), (body, cuts) => {
        const file = withTrailer(Buffer.from(body));
        const h = new TrailerHasher();
        let at = 0;
        for (let i = 0; at < file.length; i++) {
          const n = cuts[i % cuts.length]!;
          h.update(file.subarray(at, at + n));
          at += n;
        }
        const r = h.result();
        expect(r.trailerOk).toBe(true);
        expect(r.size).toBe(file.length);
        expect(r.sha256).toBe(createHash('sha256').update(file).digest('hex'));
      }),
    );
  });

  it('a cut tail, a flipped byte, an empty or tiny file are reported with a reason', async () => {
    const good = withTrailer(Buffer.alloc(3 * 1024 * 1024 + 17, 7)); // more than one read buffer
    const cases: [string, Buffer, RegExp | undefined][] = [
      ['good', good, undefined],
      ['cut', good.subarray(0, good.length - 16), /truncated or damaged/],
      ['half', good.subarray(0, good.length / 2), /truncated or damaged/],
      ['flipped', Buffer.from(good).fill(8, 1000, 1001), /truncated or damaged/],
      ['empty', Buffer.alloc(0), /empty/],
      ['tiny', Buffer.alloc(20), /not a snapshot/],
    ];
    for (const [name, bytes, problem] of cases) {
      const f = join(dir, name);
      writeFileSync(f, bytes);
      const r = await checkSnapshotFile(f);
      expect(r.trailerOk, name).toBe(problem === undefined);
      if (problem) expect(r.problem, name).toMatch(problem);
      expect(r.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    }
  });
});
