/**
 * power-loss-restore end to end: the real runner (`node bin/runbook.js`) against a real 3-member cluster whose
 * members were all SIGKILLed. Restores from the newest VALID snapshot (a corrupt newer one is rejected with its
 * reason), recovers without restoring when a plain restart suffices, and finishes correctly when the runner itself
 * is SIGKILLed in the middle of restoring the second member and the run is resumed. Every test also checks that
 * nothing was deleted: replaced data dirs are still there, moved aside.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Etcd3 } from 'etcd3';
import { afterEach, describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../src/events/types.ts';
import { readJournal } from '../../src/store/journal.ts';
import { clockPast } from '../support/clock.ts';
import { damageMember, expectEtcdRefuses, ETCD_REFUSES } from '../support/damage.ts';
import { corruptFile, startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { rewindParams } from '../support/etcd-versions.ts';
import { cli as runCli, type CliRun } from '../support/cli.ts';

const root = join(import.meta.dirname, '../..');
const bin = join(root, 'bin/runbook.js');
const MiB = 1024 * 1024;

function runner(args: string[], env: Record<string, string> = {}): CliRun {
  return runCli(args, { env, timeout: 240_000 });
}

function onlyRun(stateDir: string): string {
  const runs = readdirSync(join(stateDir, 'runs'));
  expect(runs).toHaveLength(1);
  return runs[0]!;
}

function journal(stateDir: string): JournalRecord[] {
  return readJournal(join(stateDir, 'runs', onlyRun(stateDir), 'journal.jsonl')).records;
}

function output(recs: JournalRecord[], stepId: string, item?: string): any {
  const r = recs.findLast((x: any) => x.type === 'step.succeeded' && x.stepId === stepId && (item === undefined || x.item === item)) as any;
  return r?.output;
}

async function allKeys(client: Etcd3): Promise<Record<string, string>> {
  return client.getAll().prefix('').strings();
}

async function putKeys(client: Etcd3, prefix: string, n: number): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    const k = `${prefix}/${i}`;
    out[k] = `${prefix}-value-${i}`;
    await client.put(k).value(out[k]).exec();
  }
  return out;
}

/** Bigger db so a truncated one faults on open. */
async function putFiller(client: Etcd3, prefix: string, n: number): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const v = 'f'.repeat(256 * 1024);
  for (let i = 0; i < n; i++) {
    out[`${prefix}/${i}`] = v;
    await client.put(`${prefix}/${i}`).value(v).exec();
  }
  return out;
}

/**
 * SIGKILL every member, then damage every member's db (bbolt meta pages zeroed) and newest WAL (a record in use
 * flipped), like a bad power loss, and prove it from the outside: etcd itself, started on each member's data, refuses
 * ("invalid database" / "crc mismatch" in its own log). Sized by the data in use: etcd 3.5 preallocates both files,
 * so a cut by file size would only remove zeros and the "restore" would never run.
 */
async function killAndDamage(cluster: TestCluster): Promise<void> {
  for (const m of cluster.members) await cluster.kill(m.name);
  for (const m of cluster.members) damageMember(m, 'both');
  const refused = await expectEtcdRefuses(cluster, cluster.members.map((m) => m.name));
  for (const m of cluster.members) expect(refused[m.name]).toMatch(ETCD_REFUSES);
}

/** Pids of live processes whose command line mentions `needle` (an etcdutl a SIGKILLed runner left running). */
function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(needle)) pids.push(Number(e));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

/** Every path under the data dirs' parent and the snapshot dir, with sizes of files: to prove nothing was deleted. */
function inventoryOfFiles(cluster: TestCluster): Map<string, number> {
  const seen = new Map<string, number>();
  const walk = (p: string) => {
    const st = statSync(p);
    seen.set(p, st.isFile() ? st.size : -1);
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
  };
  for (const m of cluster.members) if (existsSync(m.dataDir)) walk(m.dataDir);
  walk(join(cluster.dir, 'snapshots'));
  return seen;
}

/** Each path that existed before still exists: where it was, or (data dirs that were replaced) in the moved-aside copy. */
function expectNothingDeleted(cluster: TestCluster, before: Map<string, number>): void {
  for (const [p, size] of before) {
    const m = cluster.members.find((x) => p === x.dataDir || p.startsWith(`${x.dataDir}/`));
    const asides = m ? readdirSync(dirname(m.dataDir)).filter((e) => e.startsWith(`${basename(m.dataDir)}.pre-restore-`)) : [];
    const places = m && asides.length > 0 ? asides.map((a) => join(dirname(m.dataDir), a) + p.slice(m.dataDir.length)) : [p];
    const kept = places.some((q) => existsSync(q) && (size < 0 || statSync(q).size === size));
    expect(kept, `${p} is neither in place nor in a moved-aside copy`).toBe(true);
  }
}

function expectNoPartLeft(cluster: TestCluster): void {
  for (const m of cluster.members) expect(existsSync(`${m.dataDir}.part`), `${m.dataDir}.part left behind`).toBe(false);
}

function markerOf(dataDir: string): { token: string; sha256: string; restoredAt: string } {
  return JSON.parse(readFileSync(join(dataDir, 'runbook-restore.json'), 'utf8'));
}

describe('power-loss-restore (real runner, real 3-member cluster)', () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.teardown();
    cluster = undefined;
  });

  it('rejects a corrupt newer snapshot, restores every member from the older valid one, moves the damaged data aside', async () => {
    cluster = await startCluster({ name: 'plr', quotaBytes: 64 * MiB });
    const inv = cluster.writeInventory();
    const stateDir = join(cluster.dir, 'state');
    const snapDir = join(cluster.dir, 'snapshots');
    const client = cluster.client();
    const inSnapshot = { ...(await putKeys(client, 'a', 10)), ...(await putFiller(client, 'filler', 8)) };

    const backup = await runner(['run', 'snapshot-backup', '-i', inv, '--state-dir', join(cluster.dir, 'backup-state'), '--yes', '--json']);
    expect(backup.exitCode, backup.stdout + backup.stderr).toBe(0);
    const older = readdirSync(snapDir).filter((f) => f.endsWith('.db'));
    expect(older).toHaveLength(1);
    const olderPath = join(snapDir, older[0]!);
    expect(JSON.parse(readFileSync(`${olderPath}.json`, 'utf8'))).toMatchObject({ cluster: 'plr', size: statSync(olderPath).size, verified: true });

    await putKeys(client, 'b', 5);
    const newer = join(snapDir, 'plr-by-hand.db');
    await clockPast(olderPath); // newer than the older one by its time, whatever the machine's load
    await cluster.snapshot(newer);
    await putKeys(client, 'c', 5);
    await killAndDamage(cluster);
    corruptFile(newer, 'flip-byte');
    const before = inventoryOfFiles(cluster);
    cluster.checkpointData(); // teardown fails the test if any of these files is deleted instead of moved aside

    // A plan first: it describes the restore branch with concrete values and changes nothing.
    const plan = await runner(['plan', 'power-loss-restore', '-i', inv, '--state-dir', join(cluster.dir, 'plan-state')]);
    expect(plan.exitCode, plan.stdout.slice(-4000) + plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/restore \[m2\]: refuse if m2 runs .* --initial-cluster m1=http:\/\/127\.0\.0\.1:\d+,m2=/);
    expect(plan.stdout).toMatch(/fresh-snapshot: stream a snapshot from a healthy member/);
    expect(inventoryOfFiles(cluster)).toEqual(before);

    const r = await runner(['run', 'power-loss-restore', '-i', inv, '--state-dir', stateDir, '--yes', '--json', '-p', 'restartWait=20s', ...rewindParams()]);
    expect(r.exitCode, r.stdout.slice(-4000) + r.stderr).toBe(0);

    const recs = journal(stateDir);
    expect(output(recs, 'try-restart').recovered).toBe(false);
    const chosen = output(recs, 'select-snapshot');
    expect(chosen.path).toBe(olderPath);
    expect(chosen.rejected).toEqual([{ path: newer, reason: expect.stringMatching(/sha256 trailer does not match/) }]);
    const tokens = new Set<string>();
    for (const m of cluster.members) {
      const out = output(recs, 'restore', m.name);
      expect(out).toMatchObject({ member: m.name, sha256: chosen.sha256, dataDir: m.dataDir });
      tokens.add(out.token);
      expect(markerOf(m.dataDir)).toMatchObject({ token: out.token, sha256: chosen.sha256 });
    }
    expect(tokens.size).toBe(1);

    await cluster.waitHealthy(30_000, { members: ['m1', 'm2', 'm3'] });
    expect(await allKeys(cluster.client('m2'))).toEqual(inSnapshot);
    expectNoPartLeft(cluster);
    expectNothingDeleted(cluster, before);
    for (const m of cluster.members) {
      const asides = readdirSync(dirname(m.dataDir)).filter((e) => e.startsWith(`${basename(m.dataDir)}.pre-restore-`));
      expect(asides).toHaveLength(1);
      expect(existsSync(join(dirname(m.dataDir), asides[0]!, 'member', 'snap', 'db'))).toBe(true);
    }
    // The corrupt snapshot is still there (reported, not removed), and a fresh verified one was taken.
    expect(existsSync(newer)).toBe(true);
    const fresh = output(recs, 'fresh-snapshot');
    expect(fresh.verified).toBe(true);
    expect(existsSync(fresh.path)).toBe(true);
  }, 240_000);

  it('recovers with a plain restart when the data is intact: no restore, no key lost', async () => {
    cluster = await startCluster({ name: 'plr-restart' });
    const inv = cluster.writeInventory();
    const stateDir = join(cluster.dir, 'state');
    const client = cluster.client();
    const written = await putKeys(client, 'k', 30);
    await cluster.snapshot(join(cluster.dir, 'snapshots', 'plr-restart-old.db'));
    Object.assign(written, await putKeys(client, 'late', 10));
    for (const m of cluster.members) await cluster.kill(m.name);
    const before = inventoryOfFiles(cluster);
    cluster.checkpointData(); // teardown fails the test if any of these files is deleted instead of moved aside

    const r = await runner(['run', 'power-loss-restore', '-i', inv, '--state-dir', stateDir, '--yes', '--json', ...rewindParams()]);
    expect(r.exitCode, r.stdout.slice(-4000) + r.stderr).toBe(0);
    const recs = journal(stateDir);
    expect(output(recs, 'try-restart').recovered).toBe(true);
    for (const id of ['select-snapshot', 'move-aside', 'restore']) {
      expect(recs.some((x: any) => x.type === 'step.started' && x.stepId === id), `${id} ran`).toBe(false);
    }
    await cluster.waitHealthy(30_000, { members: ['m1', 'm2', 'm3'] });
    const keys = await allKeys(cluster.client('m3'));
    for (const [k, v] of Object.entries(written)) expect(keys[k], k).toBe(v);
    for (const m of cluster.members) {
      expect(readdirSync(dirname(m.dataDir)).some((e) => e.startsWith(`${basename(m.dataDir)}.pre-restore-`))).toBe(false);
      expect(existsSync(join(m.dataDir, 'runbook-restore.json'))).toBe(false);
    }
    for (const [p] of before) if (p.includes('/snapshots/')) expect(existsSync(p), p).toBe(true);
  }, 240_000);

  it('resumes after the runner is SIGKILLed while restoring the members: no double restore, no .part left', async () => {
    cluster = await startCluster({ name: 'plr-resume', quotaBytes: 64 * MiB });
    const inv = cluster.writeInventory();
    const stateDir = join(cluster.dir, 'state');
    const client = cluster.client();
    const inSnapshot = { ...(await putKeys(client, 's', 10)), ...(await putFiller(client, 'filler', 8)) };
    await cluster.snapshot(join(cluster.dir, 'snapshots', 'plr-resume-1.db'));
    await putKeys(client, 'after', 5);
    await killAndDamage(cluster);
    const before = inventoryOfFiles(cluster);
    cluster.checkpointData(); // teardown fails the test if any of these files is deleted instead of moved aside

    const child = runner(['run', 'power-loss-restore', '-i', inv, '--state-dir', stateDir, '--yes', '--json', '-p', 'restartWait=20s', ...rewindParams()]);
    // Kill the runner while it is restoring m2 (the members are restored at once: others may have finished by then,
    // or not): its restore has journaled its start and its <dataDir>.part exists.
    const m2 = cluster.members[1]!;
    const m2Part = `${m2.dataDir}.part`;
    let killed = false;
    let partAtKill = false;
    let exited = false;
    void child.then(() => { exited = true; });
    for (const until = Date.now() + 180_000; Date.now() < until && !exited; await sleep(2)) {
      if (!existsSync(m2Part)) continue;
      const runs = existsSync(join(stateDir, 'runs')) ? readdirSync(join(stateDir, 'runs')) : [];
      const file = runs[0] ? join(stateDir, 'runs', runs[0], 'journal.jsonl') : undefined;
      if (!file || !existsSync(file)) continue;
      const text = readFileSync(file, 'utf8');
      if (text.split('\n').some((l) => l.includes('"step.started"') && l.includes('"stepId":"restore"') && l.includes('"item":"m2"'))) {
        child.kill('SIGKILL');
        killed = true;
        partAtKill = existsSync(m2Part);
        break;
      }
    }
    const first = await child;
    expect(killed, first.stdout.slice(-3000) + first.stderr).toBe(true);
    expect(first.signal).toBe('SIGKILL');
    expect(partAtKill, `${m2Part} existed when the runner was killed`).toBe(true);
    const runId = onlyRun(stateDir);
    const firstRecs = journal(stateDir);
    expect(output(firstRecs, 'restore', 'm2'), 'restore[m2] had not finished at the kill').toBeUndefined();
    // The members whose restore had finished before the kill, with what their data dirs hold.
    const doneBefore = new Map(cluster.members.filter((m) => output(firstRecs, 'restore', m.name) !== undefined).map((m) => [m.name, markerOf(m.dataDir)]));
    // The restore tools the dead runner started may still be writing into the .part dirs: wait until they have
    // exited (as an operator would check), so the resume meets settled half-written .part dirs.
    for (const m of cluster.members) {
      for (const until = Date.now() + 60_000; processesMentioning(`${m.dataDir}.part`).length > 0; await sleep(50)) {
        expect(Date.now() < until, `a process still writes ${m.dataDir}.part 60 s after the runner died`).toBe(true);
      }
    }

    const resumed = await runner(['resume', runId, '--state-dir', stateDir, '--json']);
    expect(resumed.exitCode, resumed.stdout.slice(-4000) + resumed.stderr).toBe(0);
    const recs = journal(stateDir);
    // A member restored before the kill was restored once, in the first process; the resumed run did not touch it.
    for (const [name, marker] of doneBefore) {
      expect(recs.filter((x: any) => x.type === 'step.started' && x.stepId === 'restore' && x.item === name), name).toHaveLength(1);
      expect(markerOf(cluster.members.find((m) => m.name === name)!.dataDir)).toEqual(marker);
    }
    const token = output(recs, 'restore', 'm1').token;
    for (const m of cluster.members) expect(markerOf(m.dataDir).token).toBe(token);
    // The .part the killed runner left was moved aside (never reused, never deleted).
    const m2Out = output(recs, 'restore', 'm2');
    expect(m2Out.interruptedMovedTo).toMatch(/\.restore-interrupted-/);
    expect(existsSync(m2Out.interruptedMovedTo)).toBe(true);

    await cluster.waitHealthy(30_000, { members: ['m1', 'm2', 'm3'] });
    expect(await allKeys(cluster.client('m1'))).toEqual(inSnapshot);
    expectNoPartLeft(cluster);
    expectNothingDeleted(cluster, before);
  }, 300_000);
});
