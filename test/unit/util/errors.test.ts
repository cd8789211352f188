/** What a user reads when the input or the machine is at fault: a place, a reason, what to do, never a stack. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExitCode, UserError, environmentError, formatDiagnostic } from '../../../src/util/errors.ts';

describe('UserError diagnostics', () => {
  it('print as file:line:col: message', () => {
    expect(formatDiagnostic({ file: 'rb.yaml', line: 3, col: 7, message: 'unknown key "stpes"' })).toBe('rb.yaml:3:7: unknown key "stpes"');
  });

  it('a huge echo of the input is shortened and kept on one line', () => {
    const e = new UserError('bad', { diagnostics: [{ file: 'f', line: 1, col: 1, message: `value "${'x'.repeat(5000)}"\nis wrong` }] });
    const m = e.diagnostics[0]!.message;
    expect(m.length).toBeLessThanOrEqual(500);
    expect(m).not.toContain('\n');
    expect(m).toContain('is wrong');
  });

  it('a file with thousands of problems reports the first ones and says how many more', () => {
    const many = Array.from({ length: 5000 }, (_, i) => ({ file: 'f', line: i + 1, col: 1, message: 'duplicate key' }));
    const e = new UserError('f: invalid', { diagnostics: many });
    expect(e.diagnostics.length).toBeLessThan(300);
    expect(e.diagnostics.at(-1)!.message).toMatch(/and \d+ more problems/);
    expect(e.exitCode).toBe(ExitCode.invalidInput);
  });
});

describe('environmentError', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'runbook-errors-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a real ENOTDIR names the path, the errno and the fix, and exits with the environment code', () => {
    const file = join(dir, 'state');
    writeFileSync(file, '');
    let thrown: unknown;
    try {
      mkdirSync(join(file, 'runs'));
    } catch (err) {
      thrown = err;
    }
    const e = environmentError(thrown)!;
    expect(e).toBeInstanceOf(UserError);
    expect(e.exitCode).toBe(ExitCode.environment);
    expect(e.message).toBe(`cannot mkdir ${join(file, 'runs')} (ENOTDIR): a part of this path is a file, not a directory: fix the path (--state-dir or RUNBOOK_STATE_DIR for runs)`);
  });

  it('leaves errors that are not the machine\'s alone', () => {
    expect(environmentError(new Error('etcd said no'))).toBeUndefined();
    expect(environmentError('a string')).toBeUndefined();
    expect(environmentError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBeUndefined();
  });
});
