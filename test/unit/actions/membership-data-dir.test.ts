import { mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chooseDataDir, chooseGivenDataDir, dirIdentity, relocatedPath } from '../../../src/actions/membership-data-dir.ts';

describe('chooseDataDir: never the old member\'s data', () => {
  let dir: string;
  let base: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'runbook-datadir-'));
    base = join(dir, 'm2.etcd');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('an absent dir (lost disk, or moved aside) is used as is', () => {
    const recorded = dirIdentity(base);
    expect(recorded.existed).toBe(false);
    expect(chooseDataDir(base, recorded, 'b2', true)).toEqual({ path: base, why: 'fresh' });
    mkdirSync(base);
    const old = dirIdentity(base);
    renameSync(base, `${base}.replaced-x`);
    expect(chooseDataDir(base, old, 'b2', true)).toEqual({ path: base, why: 'fresh' });
  });

  it('a dir created after the preflight is the replacement\'s own (a resumed start)', () => {
    mkdirSync(base);
    const old = dirIdentity(base);
    renameSync(base, `${base}.replaced-x`);
    mkdirSync(base); // what the replacement's etcd created
    expect(chooseDataDir(base, old, 'b2', true)).toEqual({ path: base, why: 'resumed' });
    // the disk was lost before the run: anything there now was created by the replacement
    expect(chooseDataDir(base, { path: base, existed: false }, 'b2', true)).toEqual({ path: base, why: 'resumed' });
  });

  it('the old data still in place: a fresh dir named after the new member (found again on resume), or a refusal', () => {
    mkdirSync(base);
    const old = dirIdentity(base);
    expect(chooseDataDir(base, old, 'b2', true)).toEqual({ path: relocatedPath(base, 'b2'), why: 'relocated' });
    mkdirSync(relocatedPath(base, 'b2'));
    expect(chooseDataDir(base, old, 'b2', true)).toEqual({ path: relocatedPath(base, 'b2'), why: 'relocated-resumed' });
    expect(chooseDataDir(base, old, 'c3', false)).toMatchObject({ refuse: expect.stringContaining('still holds the old member\'s data') });
    expect(chooseDataDir(base, undefined, 'c3', true)).toMatchObject({ refuse: expect.stringContaining('cannot tell') });
  });

  it('a dir the operator named (a new disk): used when absent or empty, refused when it holds anything', () => {
    const given = join(dir, 'new-disk', 'm2.etcd');
    expect(chooseGivenDataDir(given, 'b2')).toEqual({ path: given, why: 'fresh' });
    mkdirSync(given, { recursive: true });
    expect(chooseGivenDataDir(given, 'b2')).toEqual({ path: given, why: 'fresh' });
    mkdirSync(join(given, 'member'));
    expect(chooseGivenDataDir(given, 'b2')).toMatchObject({ refuse: expect.stringContaining('cannot tell') });
  });
});
