/**
 * Copies off the host over ssh (a real OpenSSH server on 127.0.0.1, test/support/sshd.ts): `backup stream
 * --copy-to <member>:<dir>` copies every sealed segment and the full snapshot, with manifests, to that member's
 * host; each copy's sha256 is computed there before it takes its final name. A copy already there with other
 * bytes is a conflict: reported, exit 1, and left exactly as it was (never overwritten, never deleted).
 */
import { appendFileSync, createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ResultPromise } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readLog, readStatus } from '../../src/backup/status.ts';
import { deltasDir } from '../../src/backup/segments.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { sshdAvailable, startSshd, type TestSshd } from '../support/sshd.ts';
import { poll } from '../support/backup-workload.ts';
import { cli as runCli, type CliRun } from '../support/cli.ts';

const root = join(import.meta.dirname, '../..');
const bin = join(root, 'bin/runbook.js');

function cli(args: string[]): CliRun {
  return runCli(args, { timeout: 240_000 });
}

function sha(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file).on('data', (d) => h.update(d)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
  });
}

let cluster: TestCluster | undefined;
let sshd: TestSshd;
let remoteRoot: string;
const children: ResultPromise[] = [];
beforeAll(async () => {
  expect(sshdAvailable()).toBe(true);
  sshd = await startSshd();
  remoteRoot = mkdtempSync(join(tmpdir(), 'runbook-offhost-'));
}, 60_000);
afterAll(async () => {
  await sshd?.stop();
  rmSync(remoteRoot, { recursive: true, force: true });
});
afterEach(async () => {
  for (const c of children.splice(0)) {
    c.kill('SIGKILL');
    await c.catch(() => {});
  }
  await cluster?.teardown();
  cluster = undefined;
});

describe('backup copies over ssh', () => {
  it('copies sealed segments and snapshots, verified there; a different file already there is left alone', async () => {
    cluster = await startCluster({ name: 'cp', members: 1 });
    const c = cluster;
    // The copy target is an inventory host: the member's host, reached over ssh (this machine's sshd; the stream
    // itself only talks to the member's client URL).
    const base = c.inventory();
    const inv = c.writeInventory(undefined, { members: base.members.map((m) => ({ ...m, ssh: sshd.host })) });
    const dir = join(c.dir, 'snapshots');
    const remote = join(remoteRoot, 'cp backups');
    const stream = cli(['backup', 'stream', '-i', inv, '--fsync-interval', '200ms', '--segment-max-age', '1s', '--copy-to', `m1:${remote}`]);
    children.push(stream);
    await poll('the stream to start', () => (readStatus(dir)?.state === 'streaming' ? true : undefined));
    const kv = c.client(c.members[0]!.name);
    for (let i = 0; i < 30; i++) await kv.put(`/x/${i}`).value(`v${i}`).exec();
    await poll('a sealed segment copied', () => (existsSync(join(remote, 'deltas')) && readdirSync(join(remote, 'deltas')).some((f) => f.endsWith('.seg.json')) ? true : undefined), 60_000);
    stream.kill('SIGTERM');
    expect((await stream).exitCode).toBe(0);
    expect(readLog(dir).some((e) => e.kind === 'copied')).toBe(true);

    // Everything local is there, byte for byte; no .part left.
    const sealedLocal = readdirSync(deltasDir(dir)).filter((f) => f.endsWith('.seg') || f.endsWith('.seg.json'));
    const snapsLocal = readdirSync(dir).filter((f) => /\.db(\.json)?$/.test(f));
    expect(sealedLocal.length).toBeGreaterThanOrEqual(2);
    const again = await cli(['backup', 'copy', '-i', inv, '--to', `m1:${remote}`, '--json']);
    expect(again.exitCode, again.stderr).toBe(0);
    for (const f of sealedLocal) expect(await sha(join(remote, 'deltas', f)), f).toBe(await sha(join(deltasDir(dir), f)));
    for (const f of snapsLocal) expect(await sha(join(remote, f)), f).toBe(await sha(join(dir, f)));
    expect([...readdirSync(remote), ...readdirSync(join(remote, 'deltas'))].filter((f) => f.includes('.part'))).toEqual([]);

    // A copy that differs (damaged on that host): without the ledger, the next pass finds it, reports it, leaves it.
    const victim = join(remote, 'deltas', sealedLocal.find((f) => f.endsWith('.seg'))!);
    appendFileSync(victim, 'damage');
    const damaged = readFileSync(victim);
    for (const f of readdirSync(deltasDir(dir)).filter((x) => x.startsWith('copied-'))) renameSync(join(deltasDir(dir), f), join(c.dir, `${f}.moved-by-test`));
    const r = await cli(['backup', 'copy', '-i', inv, '--to', `m1:${remote}`]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/conflict/);
    expect(readFileSync(victim)).toEqual(damaged);

    const bad = await cli(['backup', 'copy', '-i', inv, '--to', 'nobody:/x']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/--to: expected <member>:<absolute dir>/);
    const badS3 = await cli(['backup', 'copy', '-i', inv, '--to', 's3://B']);
    expect(badS3.exitCode).toBe(2);
    expect(badS3.stderr).toMatch(/--to: expected s3:\/\/<bucket>/);
  }, 120_000);
});
