/**
 * A run is pinned to the cluster it started on. For each built-in runbook, a run on cluster A is interrupted (at
 * its approval gate, or by killing the runner), then resumed with cluster B's inventory: the resume exits non-zero
 * naming both cluster ids, and B — a healthy cluster with its own keys — is untouched: same keys, revisions not
 * compacted, same member list, same data dirs (not moved aside), same etcd processes. Real runner processes, real
 * 3-member clusters.
 */
import { closeSync, openSync, readdirSync, readFileSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toHexId } from '../../src/etcd/ids.ts';
import { isAlive } from '../../src/util/pids.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { rewindParams } from '../support/etcd-versions.ts';
import { cli as runCli, type CliRun } from '../support/cli.ts';

const root = join(import.meta.dirname, '../..');
const bin = join(root, 'bin/runbook.js');

function runner(args: string[], env: Record<string, string> = {}): CliRun {
  return runCli(args, { env, timeout: 180_000 });
}

async function waitForText(p: { stdout?: NodeJS.ReadableStream | null; stderr?: NodeJS.ReadableStream | null }, re: RegExp, ms = 120_000): Promise<string> {
  let buf = '';
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}; got:\n${buf}`)), ms);
    const on = (d: Buffer) => {
      buf += d.toString();
      if (re.test(buf)) {
        clearTimeout(t);
        resolve(buf);
      }
    };
    p.stdout!.on('data', on);
    p.stderr!.on('data', on);
  });
}

function onlyRun(stateDir: string): string {
  const runs = readdirSync(join(stateDir, 'runs'));
  expect(runs).toHaveLength(1);
  return runs[0]!;
}

async function clusterIdOf(client: Etcd3): Promise<string> {
  return toHexId((await client.maintenance.status()).header.cluster_id);
}

/** Everything about B a wrong-cluster action would change. */
async function stateOf(c: TestCluster) {
  const client = c.client('m1');
  const status = await client.maintenance.status();
  const members = (await client.cluster.memberList({})).members.map((m) => ({ id: m.ID, name: m.name, peerURLs: m.peerURLs, isLearner: m.isLearner ?? false }));
  // Revision 2 is the first key B was given: readable only while nothing compacted it.
  const firstRevision = await client.get('b/0').revision(2).string();
  const dataDirs = c.members.map((m) => ({
    ino: statSync(m.dataDir).ino,
    memberIno: statSync(join(m.dataDir, 'member')).ino,
    asides: readdirSync(dirname(m.dataDir)).filter((e) => e.startsWith(`${basename(m.dataDir)}.`)),
  }));
  const pids = c.members.map((m) => c.pid(m.name));
  return { keys: await client.getAll().prefix('').strings(), revision: Number(status.header.revision), firstRevision, members, dataDirs, pids };
}

async function expectUnchanged(c: TestCluster, before: Awaited<ReturnType<typeof stateOf>>): Promise<void> {
  const after = await stateOf(c);
  expect(after).toEqual(before);
  for (const pid of after.pids) expect(isAlive(pid!)).toBe(true);
  expect(await c.alarms()).toEqual([]);
}

function expectRefusedNamingBoth(r: { exitCode?: number; stdout: string; stderr: string }, idA: string, idB: string): void {
  const text = r.stdout + r.stderr;
  expect(r.exitCode, text).not.toBe(0);
  expect(text).toContain(idA);
  expect(text).toContain(idB);
  expect(text).not.toMatch(/internal error/);
}

describe('a run is pinned to the cluster it started on (resume with another cluster\'s inventory)', () => {
  let b: TestCluster;
  let invB = '';
  let idB = '';
  let a: TestCluster | undefined;

  beforeAll(async () => {
    b = await startCluster({ name: 'identity-b' });
    invB = b.writeInventory(join(b.dir, 'cluster-b.yaml'));
    const client = b.client('m1');
    for (let i = 0; i < 20; i++) await client.put(`b/${i}`).value(`b-${i}`).exec();
    idB = await clusterIdOf(client);
  }, 120_000);
  afterAll(async () => {
    await b?.teardown();
  });
  afterEach(async () => {
    await a?.teardown();
    a = undefined;
  });

  it('nospace-recovery: runner killed as the compaction starts; resumed with B: refused naming both ids, B not compacted', async () => {
    a = await startCluster({ name: 'identity-a1', quotaBytes: 16 * 1024 * 1024 });
    await a.fillToNospace();
    const idA = await clusterIdOf(a.client('m1'));
    expect(idA).not.toBe(idB);
    const stateDir = join(a.dir, 'state');
    const killed = await runner(['run', 'nospace-recovery', '-i', a.writeInventory(), '--state-dir', stateDir, '--yes'], { RUNBOOK_FAILPOINT: 'journal-after:step.started:compact' });
    expect(killed.signal, killed.stdout + killed.stderr).toBe('SIGKILL');
    const runId = onlyRun(stateDir);
    const journal = readFileSync(join(stateDir, 'runs', runId, 'journal.jsonl'), 'utf8');
    expect(journal).toContain(`"clusterId":"${idA}"`);

    const before = await stateOf(b);
    const r = await runner(['resume', runId, '--state-dir', stateDir, '--inventory', invB, '--yes']);
    expectRefusedNamingBoth(r, idA, idB);
    await expectUnchanged(b, before);

    // The run is still A's: resumed with its own inventory it finishes there.
    const own = await runner(['resume', runId, '--state-dir', stateDir, '--yes']);
    expect(own.exitCode, own.stdout + own.stderr).toBe(0);
    expect(await a.alarms()).toEqual([]);
  }, 240_000);

  it('power-loss-restore: interrupted at its approval gate; resumed with B --yes: refused naming both ids, nothing on B stopped, moved or restored', async () => {
    a = await startCluster({ name: 'identity-a2' });
    const client = a.client('m1');
    for (let i = 0; i < 10; i++) await client.put(`a/${i}`).value(`a-${i}`).exec();
    const idA = await clusterIdOf(client);
    await a.snapshot(join(a.dir, 'snapshots', 'identity-a2-1.db'));
    // Power loss on two members whose db is then unreadable ("invalid database"): the plain restart cannot form a
    // quorum, so the runbook goes on to choose a snapshot and asks before restoring. m1 still answers for A.
    for (const m of a.members.slice(1)) {
      await a.kill(m.name);
      const fd = openSync(join(m.dataDir, 'member', 'snap', 'db'), 'r+');
      try { writeSync(fd, Buffer.alloc(16 * 1024)); } finally { closeSync(fd); }
    }
    a.checkpointData();
    const stateDir = join(a.dir, 'state');
    const p = runner(['run', 'power-loss-restore', '-i', a.writeInventory(), '--state-dir', stateDir, '-p', 'restartWait=5s', '--wait-for-approval', ...rewindParams()]);
    await waitForText(p, /confirm-restore: waiting for approval/);
    p.kill('SIGINT');
    const interrupted = await p;
    expect(interrupted.exitCode, interrupted.stdout + interrupted.stderr).toBe(130);
    const runId = onlyRun(stateDir);

    const before = await stateOf(b);
    const r = await runner(['resume', runId, '--state-dir', stateDir, '--inventory', invB, '--yes']);
    expectRefusedNamingBoth(r, idA, idB);
    await expectUnchanged(b, before);
    expect(await b.client('m1').getAll().prefix('a/').keys()).toEqual([]);
  }, 240_000);

  it('member-replacement: interrupted at its approval gate; resumed with B --yes: refused naming both ids, B keeps its members', async () => {
    a = await startCluster({ name: 'identity-a3' });
    const idA = await clusterIdOf(a.client('m1'));
    const stateDir = join(a.dir, 'state');
    const invA = a.writeInventory(join(a.dir, 'cluster.yaml'), { snapshots: undefined });
    const p = runner(['run', 'member-replacement', '-i', invA, '--state-dir', stateDir, '-p', 'member=m2', '--wait-for-approval']);
    await waitForText(p, /confirm: waiting for approval/);
    p.kill('SIGINT');
    const interrupted = await p;
    expect(interrupted.exitCode, interrupted.stdout + interrupted.stderr).toBe(130);
    const runId = onlyRun(stateDir);

    const before = await stateOf(b);
    const r = await runner(['resume', runId, '--state-dir', stateDir, '--inventory', invB, '--yes']);
    expectRefusedNamingBoth(r, idA, idB);
    await expectUnchanged(b, before);
    // `status` says which cluster the run belongs to
    const status = await runner(['status', runId, '--state-dir', stateDir]);
    expect(status.stdout).toContain(`pinned to cluster id ${idA}`);
    // A was not touched either: the refusal comes before any step.
    expect((await a.client("m1").cluster.memberList({})).members).toHaveLength(3);
  }, 240_000);
});

