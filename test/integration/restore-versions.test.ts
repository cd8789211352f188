/**
 * power-loss-restore picks its restore tool by the cluster's etcd version and what the tools found can do, never by
 * whichever binary comes first, and never lets revisions go back unless the operator said so.
 *
 * The members' host is modelled by a bin dir the test builds from symlinks, named as the inventory's etcdBinDir and
 * holding the members' etcd; the runner's PATH has no etcd tools at all, so what that dir holds is all there is:
 * - only an `etcdctl` of the cluster's release (kubeadm: etcd in a container, the host has a client): on 3.5 that
 *   etcdctl has --bump-revision (probed), so the restore uses it and the revision after is higher than before; on
 *   3.4.23 it has not, so the run refuses before touching anything, and with -p allowRevisionRewind=true restores
 *   and says the revisions went back;
 * - a tool of another minor than the cluster (a 3.4 etcdctl beside a 3.5 etcd; a 3.5 one beside 3.4): refused
 *   before anything is touched, even with allowRevisionRewind, since a 3.5 snapshot is never restored with a 3.4
 *   tool (nor a 3.4 cluster's data written by a 3.5 one).
 * The damage: every member SIGKILLed and its bbolt meta pages zeroed, so no plain restart can recover it.
 */
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, symlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { readJournal } from '../../src/store/journal.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { suiteEtcd, suiteToolsCanBump, toolsBinDir } from '../support/etcd-versions.ts';
import { cli as runCli } from '../support/cli.ts';

const root = join(import.meta.dirname, '../..');
const bin = join(root, 'bin/runbook.js');
const MiB = 1024 * 1024;
const scratch = mkdtempSync(join(tmpdir(), 'runbook-restore-versions-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The runner with no etcd tool on its PATH: only the inventory's etcdBinDir (and the members' etcd dir) count. */
function runner(args: string[]) {
  return runCli(args, { timeout: 240_000, env: { PATH: '/usr/bin:/bin' } });
}

/** A bin dir of symlinks: `etcd` from `etcdFrom`, and each named tool from its own dir. */
function hostBinDir(name: string, etcdFrom: string, tools: Record<string, string>): string {
  const dir = join(scratch, name);
  mkdirSync(dir);
  symlinkSync(join(etcdFrom, 'etcd'), join(dir, 'etcd'));
  for (const [tool, from] of Object.entries(tools)) symlinkSync(join(from, tool), join(dir, tool));
  return dir;
}

function journalOf(stateDir: string): any[] {
  const runs = readdirSync(join(stateDir, 'runs'));
  expect(runs).toHaveLength(1);
  return readJournal(join(stateDir, 'runs', runs[0]!, 'journal.jsonl')).records as any[];
}

const output = (recs: any[], step: string, item?: string) => recs.findLast((x) => x.type === 'step.succeeded' && x.stepId === step && (item === undefined || x.item === item))?.output;

async function revisionOf(cluster: TestCluster): Promise<number> {
  return Number((await cluster.client('m1').maintenance.status()).header.revision);
}

/** Keys, a snapshot, more keys (so the revision moves past the snapshot's), then every member killed and its db's meta pages zeroed. */
async function prepare(cluster: TestCluster): Promise<{ before: number; inSnapshot: Record<string, string> }> {
  const client = cluster.client();
  const inSnapshot: Record<string, string> = {};
  for (let i = 0; i < 20; i++) {
    inSnapshot[`v/${i}`] = `value-${i}`;
    await client.put(`v/${i}`).value(`value-${i}`).exec();
  }
  await cluster.snapshot(join(cluster.dir, 'snapshots', 'by-hand.db'));
  for (let i = 0; i < 60; i++) await client.put(`after/${i % 5}`).value(`x${i}`).exec();
  const before = await revisionOf(cluster);
  for (const m of cluster.members) await cluster.kill(m.name);
  for (const m of cluster.members) {
    const fd = openSync(join(m.dataDir, 'member', 'snap', 'db'), 'r+');
    try {
      writeSync(fd, Buffer.alloc(16 * 1024), 0, 16 * 1024, 0);
    } finally {
      closeSync(fd);
    }
  }
  cluster.checkpointData();
  return { before, inSnapshot };
}

function movedAside(cluster: TestCluster): string[] {
  return cluster.members.flatMap((m) => readdirSync(dirname(m.dataDir)).filter((e) => e.startsWith(`${basename(m.dataDir)}.pre-restore-`)));
}

describe('power-loss-restore chooses its restore tool by the cluster version and a capability probe', () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.teardown();
    cluster = undefined;
  });

  it('a host with only the cluster release\'s etcdctl: restores with it if it can bump, else refuses until the rewind is accepted; the revision never goes back unasked', async () => {
    const suite = suiteEtcd();
    const onlyCtl = hostBinDir('only-etcdctl', suite.binDir, { etcdctl: suite.binDir });
    cluster = await startCluster({ name: 'only-ctl', quotaBytes: 32 * MiB, etcdBinDir: onlyCtl, expectVersion: suite.version });
    const inv = cluster.writeInventory();
    const { before, inSnapshot } = await prepare(cluster);

    // The plan says which will happen, from the same probes.
    const plan = await runner(['plan', 'power-loss-restore', '-i', inv, '--state-dir', join(cluster.dir, 'plan-state')]);
    expect(plan.exitCode, plan.stdout.slice(-3000) + plan.stderr).toBe(0);
    const canBump = suiteToolsCanBump();
    expect(plan.stdout).toMatch(canBump ? /restore with etcdctl \S+ \(.*\): revisions move forward/ : /REFUSES before touching anything: .*revisions would go BACK/);

    const stateDir = join(cluster.dir, 'state');
    const r = await runner(['run', 'power-loss-restore', '-i', inv, '--state-dir', stateDir, '--yes', '--json', '-p', 'restartWait=8s']);
    if (canBump) {
      expect(r.exitCode, r.stdout.slice(-4000) + r.stderr).toBe(0);
      const recs = journalOf(stateDir);
      expect(output(recs, 'select-snapshot').restore).toMatchObject({ etcdVersion: suite.version, versionSource: "members' etcd binaries", revisions: 'forward' });
      for (const m of cluster.members) expect(output(recs, 'restore', m.name)).toMatchObject({ revisions: 'forward', tool: expect.stringMatching(/^etcdctl .*--bump-revision/) });
      await cluster.waitHealthy(30_000, { members: ['m1', 'm2', 'm3'] });
      expect(await revisionOf(cluster)).toBeGreaterThan(before);
      expect(await cluster.client('m2').getAll().prefix('v/').strings()).toEqual(inSnapshot);
      return;
    }
    // Refused at select-snapshot: no member stopped by the run, no data dir moved aside.
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/revisions would go BACK/);
    expect(r.stdout + r.stderr).toMatch(/allowRevisionRewind=true/);
    expect(movedAside(cluster)).toEqual([]);
    const refused = journalOf(stateDir);
    expect(refused.some((x) => x.type === 'step.started' && x.stepId === 'move-aside')).toBe(false);

    // Accepted: restored, and the run says the revisions went back.
    const stateDir2 = join(cluster.dir, 'state-rewind');
    const r2 = await runner(['run', 'power-loss-restore', '-i', inv, '--state-dir', stateDir2, '--yes', '--json', '-p', 'restartWait=8s', '-p', 'allowRevisionRewind=true']);
    expect(r2.exitCode, r2.stdout.slice(-4000) + r2.stderr).toBe(0);
    const recs = journalOf(stateDir2);
    expect(output(recs, 'select-snapshot').restore).toMatchObject({ revisions: 'rewind', consequence: expect.stringMatching(/go BACK.*accepted/) });
    for (const m of cluster.members) expect(output(recs, 'restore', m.name)).toMatchObject({ revisions: 'rewind' });
    await cluster.waitHealthy(30_000, { members: ['m1', 'm2', 'm3'] });
    expect(await cluster.client('m2').getAll().prefix('v/').strings()).toEqual(inSnapshot);
  }, 300_000);

  it('a tool of another minor than the cluster is never used, even with allowRevisionRewind: refused before anything is touched', async () => {
    const suite = suiteEtcd();
    const v35 = suite.version.startsWith('3.5.');
    // 3.5 cluster: a 3.4.23 etcdctl beside it. 3.4 cluster: a 3.5.30 etcdctl beside it.
    const foreign = v35 ? toolsBinDir('3.4.23') : toolsBinDir('3.5.30');
    const mixed = hostBinDir('foreign-etcdctl', suite.binDir, { etcdctl: foreign });
    cluster = await startCluster({ name: 'foreign', quotaBytes: 32 * MiB, etcdBinDir: mixed, expectVersion: suite.version });
    const inv = cluster.writeInventory();
    await prepare(cluster);

    const stateDir = join(cluster.dir, 'state');
    const r = await runner(['run', 'power-loss-restore', '-i', inv, '--state-dir', stateDir, '--yes', '--json', '-p', 'restartWait=8s', '-p', 'allowRevisionRewind=true']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(v35 ? /3\.5 snapshot is never opened with a 3\.4 tool/ : /written by a 3\.4 tool/);
    expect(r.stdout + r.stderr).toMatch(new RegExp(`etcd ${suite.version.slice(0, 3).replace('.', '\\.')}\\.x release tools`));
    expect(movedAside(cluster)).toEqual([]);
    for (const m of cluster.members) expect(existsSync(join(m.dataDir, 'member', 'snap', 'db'))).toBe(true);
  }, 240_000);
});
