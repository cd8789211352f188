/**
 * Starting a restored cluster (members.start-all), through the real runner against real 3-member clusters:
 *   - all members restored from a snapshot, then the disk under the first one damages its db (the first 16 KiB
 *     zeroed, as a failing disk or a bad power loss does): the start step fails on its first attempt, naming the
 *     member and the damage its own log shows, with that member started exactly once — no retry that cannot
 *     pass, no waiting for a quorum, and no later step run;
 *   - power-loss-restore end to end after a power loss with real damage (every db's bbolt meta pages zeroed: on
 *     etcd 3.5 the db is preallocated and a cut file usually keeps them): every member restored, all started
 *     together, the data of the snapshot served, and the run's report gives the time to writable, with the fresh
 *     snapshot after it reported apart (also in --json).
 */
import { closeSync, openSync, readdirSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../src/events/types.ts';
import { readJournal } from '../../src/store/journal.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { rewindParams, suiteToolsCanBump } from '../support/etcd-versions.ts';
import { cli as runCli } from '../support/cli.ts';

const root = join(import.meta.dirname, '../..');
const bin = join(root, 'bin/runbook.js');

function runner(args: string[]) {
  return runCli(args, { timeout: 240_000 });
}

function journal(stateDir: string): JournalRecord[] {
  const runs = readdirSync(join(stateDir, 'runs'));
  expect(runs).toHaveLength(1);
  return readJournal(join(stateDir, 'runs', runs[0]!, 'journal.jsonl')).records;
}

function zeroHead(file: string): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, Buffer.alloc(16 * 1024), 0, 16 * 1024, 0);
  } finally {
    closeSync(fd);
  }
}

/** Go panics (one per crashed start) in a member's log written after `from` (a byte offset). */
function panicsIn(file: string, from: number): string[] {
  return readFileSync(file).subarray(from).toString('utf8').split('\n').filter((l) => l.startsWith('panic: '));
}

async function putKeys(cluster: TestCluster, n: number): Promise<Record<string, string>> {
  const c = cluster.client();
  const out: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    out[`k/${i}`] = `v-${i}-${'x'.repeat(2000)}`;
    await c.put(`k/${i}`).value(out[`k/${i}`]!).exec();
  }
  return out;
}

describe('starting a restored cluster (real runner, real etcd)', () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.teardown();
    cluster = undefined;
  });

  it('fails at once, without retrying, when the first member exits on damaged data after its restore', async () => {
    cluster = await startCluster({ name: 'rst-damaged' });
    await putKeys(cluster, 20);
    await cluster.snapshot(join(cluster.dir, 'snapshots', 'rst-damaged-1.db'));
    cluster.checkpointData();
    const first = cluster.members[0]!;
    const db = join(first.dataDir, 'member', 'snap', 'db');
    // The built-in's restore path, then the disk under m1 damages its restored db before the start.
    const rb = join(cluster.dir, 'restore-then-damage.yaml');
    // 3.4.23's tools cannot bump revisions: the restore is accepted as a rewind there (refused otherwise).
    const rewind = suiteToolsCanBump() ? '' : ', allowRevisionRewind: true';
    writeFileSync(rb, [
      'apiVersion: runbook/v1',
      'name: restore-then-damage',
      'summary: restore every member, the first one\'s db is damaged, start them',
      'destructive: true',
      'steps:',
      `  - { id: select-snapshot, action: etcd.snapshot-select, with: { trialRestore: false${rewind} } }`,
      '  - { id: stop-members, action: members.stop, forEach: { members: all } }',
      '  - { id: move-aside, action: members.move-data-aside, with: { label: pre-restore }, forEach: { members: all } }',
      '  - id: restore',
      '    action: etcd.restore-member',
      `    with: { snapshot: '\${{ steps["select-snapshot"].output.path }}', sha256: '\${{ steps["select-snapshot"].output.sha256 }}'${rewind} }`,
      '    forEach: { members: all }',
      `  - { id: damage, action: exec, with: { argv: [dd, if=/dev/zero, ${JSON.stringify(`of=${db}`)}, bs=16384, count=1, conv=notrunc] } }`,
      '  - { id: start-members, action: members.start-all, with: { waitFor: 2m } }',
      '  - { id: verify-cluster, action: etcd.cluster-healthy, with: { waitFor: 2m } }',
      '',
    ].join('\n'));
    const logFrom = statSync(first.logFile).size;
    const stateDir = join(cluster.dir, 'state');
    const r = await runner(['run', rb, '-i', cluster.writeInventory(), '--state-dir', stateDir, '--yes', '--json']);
    expect(r.exitCode, r.stdout.slice(-3000) + r.stderr).not.toBe(0);

    const recs = journal(stateDir) as any[];
    // Every member was restored; the start step ran once and failed for good, naming m1 and its damage.
    for (const m of cluster.members) expect(recs.some((x) => x.type === 'step.succeeded' && x.stepId === 'restore' && x.item === m.name)).toBe(true);
    expect(recs.filter((x) => x.type === 'step.started' && x.stepId === 'start-members')).toHaveLength(1);
    const failed = recs.filter((x) => x.type === 'step.failed' && x.stepId === 'start-members');
    expect(failed).toHaveLength(1);
    expect(failed[0].willRetry).toBe(false);
    expect(failed[0].error.member).toBe(first.name);
    expect(failed[0].error.message).toMatch(/m1 exited right after it was started: its log says its data is damaged \(failed to open database: invalid database\)/);
    expect(recs.some((x) => x.type === 'step.started' && x.stepId === 'verify-cluster')).toBe(false);
    const finished = recs.findLast((x) => x.type === 'run.finished');
    expect(finished).toMatchObject({ status: 'failed', error: { stepId: 'start-members', member: first.name } });
    // m1 was started once by the run: its log shows one failed open of the database, not one per retry.
    expect(panicsIn(first.logFile, logFrom)).toEqual(['panic: failed to open database']);
    expect(cluster.pid(first.name)).toBeUndefined();
  }, 240_000);

  it('power-loss-restore with every db damaged: all members restored and started together, time to writable reported', async () => {
    cluster = await startCluster({ name: 'rst-plr' });
    const written = await putKeys(cluster, 40);
    await cluster.snapshot(join(cluster.dir, 'snapshots', 'rst-plr-1.db'));
    await putKeys(cluster, 5); // after the snapshot: lost by design
    for (const m of cluster.members) await cluster.kill(m.name);
    for (const m of cluster.members) zeroHead(join(m.dataDir, 'member', 'snap', 'db'));
    cluster.checkpointData();

    const stateDir = join(cluster.dir, 'state');
    const r = await runner(['run', 'power-loss-restore', '-i', cluster.writeInventory(), '--state-dir', stateDir, '--yes', '--json', ...rewindParams()]);
    expect(r.exitCode, r.stdout.slice(-4000) + r.stderr).toBe(0);
    const recs = journal(stateDir) as any[];
    const out = (id: string) => recs.findLast((x) => x.type === 'step.succeeded' && x.stepId === id && x.item === undefined)?.output;
    expect(out('try-restart').recovered).toBe(false);
    const start = out('start-members');
    expect(start.members.map((m: any) => [m.member, m.started])).toEqual(cluster.members.map((m) => [m.name, true]));
    expect(new Set(start.members.map((m: any) => m.leaderId)).size).toBe(1);

    await cluster.waitHealthy(30_000, { members: cluster.members.map((m) => m.name) });
    for (const m of cluster.members) expect(await cluster.client(m.name).getAll().prefix('k/').strings()).toEqual(written);

    // The report, in the journal and in --json: writable once verify-writes passed; the fresh snapshot after it.
    const finished = recs.findLast((x) => x.type === 'run.finished');
    const at = (type: string, stepId?: string) => Date.parse(recs.find((x) => x.type === type && x.stepId === stepId && x.item === undefined).ts);
    const runStart = at('run.started');
    expect(finished.report.timeToWritableMs).toBeGreaterThan(0);
    // Writable is the moment verify-writes passed: bounded by the journal's own records of that step (its write
    // succeeded, the step finished) and of the steps around it, not by a tolerance in ms.
    const writableAt = runStart + finished.report.timeToWritableMs;
    expect(writableAt).toBeGreaterThanOrEqual(at('step.finished', 'start-members'));
    expect(writableAt).toBeGreaterThanOrEqual(at('step.succeeded', 'verify-writes'));
    expect(writableAt).toBeLessThanOrEqual(at('step.finished', 'verify-writes'));
    expect(writableAt).toBeLessThanOrEqual(at('step.started', 'fresh-snapshot'));
    expect(finished.report.afterWritable.steps).toEqual(['fresh-snapshot']);
    expect(finished.report.timeToWritableMs + finished.report.afterWritable.ms).toBeLessThanOrEqual(finished.report.totalMs);
    const jsonFinished = r.stdout.split('\n').filter((l) => l.includes('"run.finished"')).map((l) => JSON.parse(l)).at(-1);
    expect(jsonFinished.report.timeToWritableMs).toBe(finished.report.timeToWritableMs);
  }, 240_000);
});
