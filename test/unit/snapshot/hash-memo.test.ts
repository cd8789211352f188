/**
 * The snapshot sha256 remembered within a process: reused while the file is provably unchanged, read again as soon
 * as anything about it changed (contents rewritten, even to the same size; replaced by a rename).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { snapshotSha256 } from '../../../src/snapshot/hash-memo.ts';

const sha = (b: string) => createHash('sha256').update(b).digest('hex');

describe('snapshotSha256', () => {
  const dir = mkdtempSync(join(tmpdir(), 'runbook-hashmemo-'));
  afterEach(() => rmSync(join(dir, 'x'), { force: true }));

  it('gives the file\'s sha256, and the right one again after the file was rewritten with other bytes of the same size', async () => {
    const f = join(dir, 'snap.db');
    writeFileSync(f, 'aaaa');
    expect(await snapshotSha256(f)).toBe(sha('aaaa'));
    expect(await snapshotSha256(f)).toBe(sha('aaaa'));
    writeFileSync(f, 'bbbb');
    expect(await snapshotSha256(f)).toBe(sha('bbbb'));
  });

  it('reads a file renamed over the remembered one', async () => {
    const f = join(dir, 'snap2.db');
    writeFileSync(f, 'one');
    expect(await snapshotSha256(f)).toBe(sha('one'));
    const other = join(dir, 'other.db');
    writeFileSync(other, 'two');
    renameSync(other, f);
    expect(await snapshotSha256(f)).toBe(sha('two'));
  });
});
