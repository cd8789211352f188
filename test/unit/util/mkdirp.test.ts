import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { mkdirp } from '../../../src/util/mkdirp.ts';
import { environmentError } from '../../../src/util/errors.ts';

describe('mkdirp', () => {
  it('creates every missing component and is a no-op on an existing dir', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mkdirp-'));
    const deep = path.join(root, 'a', 'b', 'c');
    mkdirp(deep, 0o700);
    expect(fs.statSync(deep).isDirectory()).toBe(true);
    expect(fs.statSync(deep).mode & 0o777).toBe(0o700);
    mkdirp(deep);
    expect(fs.readdirSync(path.join(root, 'a'))).toEqual(['b']);
  });

  it('ends with ENOENT under /proc, where Node\'s recursive mkdir loops forever', () => {
    let err: unknown;
    try { mkdirp('/proc/runbook-no-such-dir/x'); } catch (e) { err = e; }
    expect((err as NodeJS.ErrnoException).code).toBe('ENOENT');
    const user = environmentError(err);
    expect(user?.message).toMatch(/^cannot mkdir \/proc\/runbook-no-such-dir .*ENOENT/);
    expect(user?.exitCode).toBe(7);
  });

  it('refuses a path through a file with ENOTDIR', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mkdirp-'));
    fs.writeFileSync(path.join(root, 'f'), 'x');
    expect(() => mkdirp(path.join(root, 'f', 'sub'))).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
  });
});
