/** The `process` member driver against real child processes (a tiny node script stands in for etcd). */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFlag, processArgv, processStatus, setFlag, startProcess, stopProcess } from '../../../src/drivers/process.ts';
import type { ProcessSpec } from '../../../src/drivers/process.ts';
import { driverFor } from '../../../src/drivers/index.ts';
import { StepError } from '../../../src/util/errors.ts';
import { livePids } from '../../support/etcd-cluster.ts';

describe('getFlag / setFlag', () => {
  const argv = ['etcd', '--name', 'm1', '--quota-backend-bytes=100', '-snapshot-count', '10', '--client-cert-auth', '--data-dir', '/d'];

  it('reads every form, last occurrence wins, argv[0] is never a flag', () => {
    expect(getFlag(argv, 'name')).toBe('m1');
    expect(getFlag(argv, '--quota-backend-bytes')).toBe('100');
    expect(getFlag(argv, 'snapshot-count')).toBe('10');
    expect(getFlag(argv, 'client-cert-auth')).toBe('true');
    expect(getFlag(argv, 'data-dir')).toBe('/d');
    expect(getFlag(argv, 'missing')).toBeUndefined();
    expect(getFlag(['--name=x'], 'name')).toBeUndefined();
    expect(getFlag(['etcd', '--name=a', '--name', 'b'], 'name')).toBe('b');
    expect(getFlag(['etcd', '--initial-cluster=a=http://x,b=http://y'], 'initial-cluster')).toBe('a=http://x,b=http://y');
    expect(getFlag(['etcd', '--name-prefix=a'], 'name')).toBeUndefined();
  });

  it('rewrites in place keeping the form, appends when absent, and does not mutate its input', () => {
    const copy = [...argv];
    expect(setFlag(argv, 'quota-backend-bytes', '200')).toEqual(['etcd', '--name', 'm1', '--quota-backend-bytes=200', '-snapshot-count', '10', '--client-cert-auth', '--data-dir', '/d']);
    expect(setFlag(argv, 'name', 'm9')).toEqual(['etcd', '--name', 'm9', '--quota-backend-bytes=100', '-snapshot-count', '10', '--client-cert-auth', '--data-dir', '/d']);
    expect(setFlag(argv, '--snapshot-count', '5')[5]).toBe('5');
    expect(setFlag(argv, 'client-cert-auth', 'false')[6]).toBe('--client-cert-auth=false');
    expect(setFlag(argv, 'max-txn-ops', '512')).toEqual([...argv, '--max-txn-ops=512']);
    expect(setFlag(['etcd', '--a=1', '--a', '2'], 'a', '3')).toEqual(['etcd', '--a=3', '--a', '3']);
    expect(argv).toEqual(copy);
  });

  it('round-trips: what setFlag writes, getFlag reads', () => {
    for (const value of ['1', '8GiB', 'a=b', 'http://127.0.0.1:2379']) {
      expect(getFlag(setFlag(argv, 'quota-backend-bytes', value), 'quota-backend-bytes')).toBe(value);
      expect(getFlag(setFlag(argv, 'new-flag', value), 'new-flag')).toBe(value);
    }
  });
});

describe('start / stop / status', () => {
  let dir: string;
  let script: string;
  const started: number[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'runbook-test-driver-'));
    script = join(dir, 'fake-member.mjs');
    writeFileSync(
      script,
      `process.on('SIGTERM', () => { if (!process.argv.includes('--ignore-term')) process.exit(0); console.log('ignored SIGTERM'); });
       console.log('started ' + process.argv.slice(2).join(' '));
       setInterval(() => {}, 1000);\n`,
    );
  });
  afterAll(() => {
    for (const pid of livePids(started)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const spec = (name: string, extra: string[] = []): ProcessSpec => ({
    type: 'process',
    command: [process.execPath, script, '--name', name, '--data-dir', join(dir, name), ...extra],
    pidFile: join(dir, `${name}.pid`),
    logFile: join(dir, `${name}.log`),
  });
  async function waitForLog(file: string, text: string): Promise<void> {
    for (const until = Date.now() + 10_000; ; await sleep(20)) {
      if (existsSync(file) && readFileSync(file, 'utf8').includes(text)) return;
      if (Date.now() > until) throw new Error(`${file} never said ${text}`);
    }
  }

  it('starts detached, writes the pid file, is idempotent, and stops', async () => {
    const s = spec('a');
    const first = await startProcess(s);
    started.push(first.pid);
    expect(first.alreadyRunning).toBe(false);
    expect(readFileSync(s.pidFile, 'utf8').trim()).toBe(String(first.pid));
    expect(processArgv(first.pid)).toEqual(s.command);
    await waitForLog(s.logFile!, 'started --name a');

    const again = await startProcess(s);
    expect(again).toEqual({ pid: first.pid, alreadyRunning: true });
    expect(await processStatus(s)).toEqual({ running: true, pid: first.pid });

    expect(await stopProcess(s)).toMatchObject({ wasRunning: true, pid: first.pid, killed: false });
    expect(livePids([first.pid])).toEqual([]);
    expect(await processStatus(s)).toEqual({ running: false });
    expect(await stopProcess(s)).toEqual({ wasRunning: false });
  });

  it('never signals a pid whose command line is not the member (recycled pid)', async () => {
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    started.push(other.pid!);
    const s = spec('b');
    writeFileSync(s.pidFile, `${other.pid}\n`);
    expect(await processStatus(s)).toEqual({ running: false });
    expect(await stopProcess(s, { signal: 'SIGKILL' })).toEqual({ wasRunning: false });
    expect(livePids([other.pid!])).toEqual([other.pid]);

    // Same program, another instance (--name differs): also not ours.
    const c = await startProcess(spec('c'));
    started.push(c.pid);
    writeFileSync(s.pidFile, `${c.pid}\n`);
    expect(await stopProcess(s, { signal: 'SIGKILL' })).toEqual({ wasRunning: false });
    expect(livePids([c.pid])).toEqual([c.pid]);

    // A start with a stale pid file starts a new process instead of adopting the stranger.
    const b = await startProcess(s);
    started.push(b.pid);
    expect(b.alreadyRunning).toBe(false);
    expect(b.pid).not.toBe(c.pid);
    await stopProcess(s);
    await stopProcess(spec('c'));
    other.kill('SIGKILL');
  });

  it('escalates to SIGKILL when SIGTERM is ignored', async () => {
    const s = spec('d', ['--ignore-term']);
    const { pid } = await startProcess(s);
    started.push(pid);
    await waitForLog(s.logFile!, 'started');
    expect(await stopProcess(s, { timeoutMs: 300 })).toMatchObject({ wasRunning: true, killed: true });
    // SIGTERM came first and was survived (the process says so), then SIGKILL ended it.
    expect(readFileSync(s.logFile!, 'utf8')).toContain('ignored SIGTERM');
    expect(livePids([pid])).toEqual([]);
  });

  it('reports a command that cannot start as a StepError', async () => {
    const s: ProcessSpec = { type: 'process', command: [join(dir, 'no-such-etcd'), '--name', 'x'], pidFile: join(dir, 'x.pid') };
    const err = await startProcess(s).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepError);
    expect((err as StepError).kind).toBe('failed');
    expect(existsSync(s.pidFile)).toBe(false);
  });

  it('driver: setFlag persists for the next start; getFlag shows what the running process uses', async () => {
    const s = spec('e', ['--quota-backend-bytes=100']);
    const member = { name: 'e', clientURL: 'http://127.0.0.1:1', peerURL: 'http://127.0.0.1:2', driver: s };
    const driver = driverFor(member);
    await driver.start();
    started.push((await driver.status()).pid!);
    expect(await driver.getFlag('quota-backend-bytes')).toBe('100');

    expect(await driver.setFlag('quota-backend-bytes', '200')).toEqual({ changed: true, previous: '100' });
    expect(await driver.setFlag('quota-backend-bytes', '200')).toEqual({ changed: false, previous: '200' });
    expect(await driver.setFlag('max-txn-ops', '512')).toEqual({ changed: true });
    // Not restarted yet: the running process still has the old value.
    expect(await driver.getFlag('quota-backend-bytes')).toBe('100');
    expect(existsSync(`${s.pidFile}.argv.json`)).toBe(true);

    await driver.stop();
    expect(await driver.status()).toEqual({ running: false });
    expect(await driver.getFlag('quota-backend-bytes')).toBe('200');
    // A fresh driver from the same (unchanged) inventory entry keeps the new flags.
    const again = driverFor(member);
    await again.start();
    const { pid } = await again.status();
    started.push(pid!);
    expect(getFlag(processArgv(pid!)!, 'quota-backend-bytes')).toBe('200');
    expect(getFlag(processArgv(pid!)!, 'max-txn-ops')).toBe('512');
    expect(await again.getFlag('quota-backend-bytes')).toBe('200');
    await again.stop({ force: true });
    expect(livePids([pid!])).toEqual([]);
  });

  it('driverFor refuses drivers it cannot run', () => {
    const base = { name: 'z', clientURL: 'http://127.0.0.1:1', peerURL: 'http://127.0.0.1:2' };
    // (The second, process-only driverFor that answered "unimplemented" for systemd is gone: every inventory driver
    // type is implemented, and actions always used the one in drivers/index.ts.)
    expect(() => driverFor({ ...base, driver: { type: 'bogus' } as never })).toThrow(expect.objectContaining({ kind: 'invalid', message: expect.stringContaining('"bogus"') }));
    expect(() => driverFor({ ...base, driver: { type: 'none' } })).toThrow(expect.objectContaining({ kind: 'invalid' }));
  });
});
