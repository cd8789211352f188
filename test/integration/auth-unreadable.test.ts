/**
 * "Unreadable is not dead": a healthy auth-enabled 3-member cluster (etcd 3.5.30 wants credentials even for
 * Maintenance Status; 3.4.23 answers status but refuses reads), driven with an inventory WITHOUT credentials.
 * diagnose names the missing credentials and recommends no runbook; power-loss-restore --yes refuses before it
 * stops anything (same pids, same data dirs, a key written after the last snapshot still there). With credentials
 * nospace-recovery, power-loss-restore and member-replacement run on the same cluster. Real etcd, the real runner (`node bin/runbook.js`).
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Diagnosis } from '../../src/diagnose/types.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { cli as runCli } from '../support/cli.ts';

const root = join(import.meta.dirname, '../..');
const bin = join(root, 'bin/runbook.js');
const PASSWORD_ENV = 'RUNBOOK_TEST_AUTH_PW';
const password = `pw-${process.pid}-${Date.now()}`;

function runner(args: string[], env: Record<string, string> = {}) {
  return runCli(args, { env, timeout: 240_000 });
}

const etcdctlBin = process.env.ETCD_BIN_DIR ? join(process.env.ETCD_BIN_DIR, 'etcdctl') : 'etcdctl';

describe('an auth-enabled cluster and an inventory without credentials', () => {
  let cluster: TestCluster;
  let noCreds: string;
  let withCreds: string;
  const ctl = (args: string[], user = true) =>
    execa(etcdctlBin, ['--endpoints', cluster.endpoints.join(','), ...(user ? ['--user', `root:${password}`] : []), ...args], {
      env: { ETCDCTL_API: '3' }, extendEnv: false, timeout: 20_000, stdin: 'ignore', reject: false,
    });

  beforeAll(async () => {
    cluster = await startCluster({ members: 3, name: 'authed' });
    // A snapshot from before auth, so a wrong restore would have something to restore (and lose the later key).
    await cluster.snapshot(join(cluster.dir, 'snapshots', 'before.db'));
    cluster.checkpointData();
    expect((await ctl(['user', 'add', `root:${password}`], false)).exitCode).toBe(0);
    expect((await ctl(['auth', 'enable'], false)).exitCode).toBe(0);
    expect((await ctl(['put', '/after-backup', 'must-survive'])).exitCode).toBe(0);
    noCreds = cluster.writeInventory(join(cluster.dir, 'no-creds.yaml'));
    withCreds = cluster.writeInventory(join(cluster.dir, 'with-creds.yaml'), { auth: { username: 'root', passwordEnv: PASSWORD_ENV } });
  }, 90_000);
  afterAll(async () => {
    await cluster?.teardown();
  });

  it('diagnose names the missing credentials, calls no member down and recommends no runbook', async () => {
    const r = await runner(['diagnose', '-i', noCreds, '--json', '--timeout', '3s']);
    const d = JSON.parse(r.stdout) as Diagnosis;
    const codes = d.findings.map((f) => f.code);
    expect(codes).toContain('credentials-required');
    expect(d.findings.find((f) => f.code === 'credentials-required')!.message).toMatch(/cannot read .*credentials required.*set auth in the inventory/);
    expect(codes).not.toContain('member-down');
    expect(codes).not.toContain('no-quorum');
    expect(d.recommendations.filter((x) => x.runbook)).toEqual([]);
    expect(d.recommendations[0]?.reason).toMatch(/set auth in the inventory/);
    const text = await runner(['diagnose', '-i', noCreds, '--timeout', '3s']);
    expect(text.stdout).not.toMatch(/power-loss-restore|does not answer/);
  }, 60_000);

  it('power-loss-restore --yes refuses before it stops anything: same pids, same data, the later key kept', async () => {
    const pids = cluster.members.map((m) => cluster.pid(m.name));
    expect(pids.every((p) => typeof p === 'number')).toBe(true);
    const stateDir = join(cluster.dir, 'state-no-creds');
    const r = await runner(['run', 'power-loss-restore', '-i', noCreds, '--state-dir', stateDir, '--yes', '-p', 'restartWait=10s']);
    expect(r.exitCode).not.toBe(0);
    expect(`${r.stdout}\n${r.stderr}`).toMatch(/set auth in the inventory/);
    expect(`${r.stdout}\n${r.stderr}`).not.toMatch(/internal error/);
    expect(cluster.members.map((m) => cluster.pid(m.name))).toEqual(pids);
    for (const m of cluster.members) {
      expect(existsSync(join(m.dataDir, 'member', 'snap', 'db'))).toBe(true);
      expect(readdirSync(dirname(m.dataDir)).filter((f) => f.includes('pre-restore'))).toEqual([]);
    }
    const get = await ctl(['get', '/after-backup', '--print-value-only']);
    expect(get.stdout.trim()).toBe('must-survive');
  }, 120_000);

  it('with credentials, diagnose is clean and nospace-recovery and power-loss-restore run', async () => {
    const env = { [PASSWORD_ENV]: password };
    const d = JSON.parse((await runner(['diagnose', '-i', withCreds, '--json'], env)).stdout) as Diagnosis;
    expect(d.findings.filter((f) => f.severity === 'critical')).toEqual([]);
    expect(d.members.every((m) => m.reachable && m.quotaSource === 'member /metrics')).toBe(true);

    const nospace = await runner(['run', 'nospace-recovery', '-i', withCreds, '--state-dir', join(cluster.dir, 's1'), '--yes'], env);
    expect(nospace.stderr).toBe('');
    expect(nospace.exitCode).toBe(0);

    const plr = await runner(['run', 'power-loss-restore', '-i', withCreds, '--state-dir', join(cluster.dir, 's3'), '--yes', '-p', 'restartWait=20s'], env);
    expect(plr.exitCode, `${plr.stdout}\n${plr.stderr}`).toBe(0);
    expect(plr.stdout).toMatch(/recovered/);
    expect((await ctl(['get', '/after-backup', '--print-value-only'])).stdout.trim()).toBe('must-survive');
    expect((await ctl(['endpoint', 'health'])).exitCode).toBe(0);
  }, 240_000);

  // The replacement learner refuses the client's Authenticate call ("rpc not supported for learner"): the start
  // step knows it by its /metrics instead.
  it('with credentials, member-replacement replaces a member', async () => {
    const env = { [PASSWORD_ENV]: password };
    const idOf = async (name: string) => (await ctl(['member', 'list', '-w', 'simple'])).stdout.split('\n').find((l) => l.split(', ')[2] === name)?.split(', ')[0];
    const before = await idOf(cluster.members[2]!.name);
    expect(before).toMatch(/^[0-9a-f]+$/);
    const replace = await runner(['run', 'member-replacement', '-i', withCreds, '--state-dir', join(cluster.dir, 's2'), '--yes', '-p', `member=${cluster.members[2]!.name}`], env);
    expect(replace.exitCode, `${replace.stdout}\n${replace.stderr}`).toBe(0);
    const after = await idOf(cluster.members[2]!.name);
    expect(after).toMatch(/^[0-9a-f]+$/);
    expect(after).not.toBe(before); // a new member, not a no-op
    expect((await ctl(['get', '/after-backup', '--print-value-only'])).stdout.trim()).toBe('must-survive');
    expect((await ctl(['endpoint', 'health'])).exitCode).toBe(0);
  }, 240_000);
});
