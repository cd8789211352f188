/** The local Host: what actions rely on when they touch a member's files on this machine (argv only, never overwrite). */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { localHost } from '../../../src/hosts/local.ts';
import { StepError } from '../../../src/util/errors.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'runbook-host-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('localHost.run', () => {
  it('passes every argument as one argv entry: no shell reads a parameter', async () => {
    const marker = join(dir, 'pwned');
    const r = await localHost.run(['printf', '%s|', 'a b', `; touch ${marker}`, '$(id)']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(`a b|; touch ${marker}|$(id)|`);
    expect(() => statSync(marker)).toThrow();
  });

  it('resolves with a failing exit code and its stderr instead of throwing', async () => {
    const r = await localHost.run(['sh', '-c', 'echo broken >&2; exit 3']);
    expect(r).toMatchObject({ exitCode: 3, stderr: expect.stringContaining('broken') });
  });

  it('throws a StepError naming the program when it cannot be run at all', async () => {
    await expect(localHost.run(['/nonexistent/etcdctl-missing', 'version'])).rejects.toThrow(StepError);
    await expect(localHost.run(['/nonexistent/etcdctl-missing', 'version'])).rejects.toThrow(/etcdctl-missing/);
  });

  it('drops inherited variables by prefix and passes the ones given', async () => {
    process.env.RUNBOOK_TEST_HOST_DROPPED = 'x';
    try {
      const r = await localHost.run(['sh', '-c', 'echo "${RUNBOOK_TEST_HOST_DROPPED:-gone} $GIVEN"'], { dropEnvPrefix: 'RUNBOOK_TEST_HOST_', env: { GIVEN: 'kept' } });
      expect(r.stdout.trim()).toBe('gone kept');
    } finally {
      delete process.env.RUNBOOK_TEST_HOST_DROPPED;
    }
  });
});

describe('localHost files', () => {
  it('writeTextAtomic replaces the content and keeps the mode of the file it replaces', async () => {
    const f = join(dir, 'etcd.env');
    writeFileSync(f, 'OLD=1\n');
    chmodSync(f, 0o600);
    await localHost.writeTextAtomic(f, 'NEW=2\n');
    expect(readFileSync(f, 'utf8')).toBe('NEW=2\n');
    expect(statSync(f).mode & 0o777).toBe(0o600);
    // No temp file left next to it.
    expect(await localHost.list(dir)).toEqual(['etcd.env']);
  });

  it('copyToFreshName never overwrites an earlier backup', async () => {
    const f = join(dir, 'manifest.yaml');
    writeFileSync(f, 'first');
    const a = await localHost.copyToFreshName(f, join(dir, 'backups', 'manifest.1'), '.yaml');
    writeFileSync(f, 'second');
    const b = await localHost.copyToFreshName(f, join(dir, 'backups', 'manifest.1'), '.yaml');
    expect(a).not.toBe(b);
    expect(readFileSync(a, 'utf8')).toBe('first');
    expect(readFileSync(b, 'utf8')).toBe('second');
  });

  it('rename refuses to move over an existing file, and both stay as they were', async () => {
    const from = join(dir, 'member.etcd.new');
    const to = join(dir, 'member.etcd');
    writeFileSync(from, 'new');
    writeFileSync(to, 'old data');
    await expect(localHost.rename(from, to)).rejects.toThrow(/already exists/);
    expect(readFileSync(to, 'utf8')).toBe('old data');
    expect(readFileSync(from, 'utf8')).toBe('new');
  });

  it('stat, readText and list say "nothing there" rather than throw for a missing path', async () => {
    const missing = join(dir, 'nope');
    expect(await localHost.stat(missing)).toBeUndefined();
    expect(await localHost.readText(missing)).toBeUndefined();
    expect(await localHost.list(missing)).toEqual([]);
  });

  it('readText reads at most maxBytes', async () => {
    const f = join(dir, 'big.log');
    writeFileSync(f, 'x'.repeat(10_000));
    expect(await localHost.readText(f, 100)).toBe('x'.repeat(100));
  });

  it('sha256 is the file content hash sha256sum prints', async () => {
    const f = join(dir, 'snap.db');
    writeFileSync(f, 'abc');
    expect(await localHost.sha256(f)).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
